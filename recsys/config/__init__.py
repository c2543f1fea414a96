"""Config validation at compose time: every key known, typed and in range before anything is built."""

from recsys.config.check import check_config, check_train_config, config_problems, tree_problems

__all__ = ["check_config", "check_train_config", "config_problems", "tree_problems"]
