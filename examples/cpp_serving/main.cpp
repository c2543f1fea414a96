// Top-k for one user from an export directory, with libtorch only:
//   recommend <export_dir> <raw user id> [k] [--sha256 <file>=<hex> ...]
// Loads retriever.pt (TorchScript), maps the raw id through vocab/users.txt, prints
// "rank<TAB>item id<TAB>score" per line. Unknown users get vocab/popular_items.txt.
//
// Each file it reads is checked against the sha256 given for it with --sha256 (take them from the
// export's manifest.json "files" table, e.g.
//   python -c "import json,sys; m=json.load(open(sys.argv[1])); \
//              print(' '.join(f'--sha256 {f}={h}' for f, h in m['files'].items()))" <export>/manifest.json
// ideally from a manifest whose own sha256 you pinned); a file without one is read with a warning
// on stderr, a file whose hash differs is refused before torch or the parser sees it.
#include <torch/script.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "sha256.h"

namespace {

constexpr int kUsage = 2;

struct Args {
  std::string dir, user;
  std::string k = "10";
  std::map<std::string, std::string> sha256;  // file relative to the export -> expected hex
};

[[noreturn]] void usage(const std::string& why) {
  throw std::invalid_argument(why + " (usage: recommend <export_dir> <raw user id> [k] "
                                    "[--sha256 <file>=<hex> ...])");
}

Args parse_args(int argc, char** argv) {
  Args args;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--sha256") {
      if (i + 1 >= argc) usage("--sha256 needs <file>=<hex>");
      const std::string spec = argv[++i];
      const auto eq = spec.find('=');
      if (eq == std::string::npos || eq == 0 || spec.size() - eq - 1 != 64)
        usage("--sha256 " + spec + ": expected <file>=<64 hex digits>");
      args.sha256[spec.substr(0, eq)] = spec.substr(eq + 1);
    } else {
      positional.push_back(arg);
    }
  }
  if (positional.size() < 2 || positional.size() > 3) usage("expected 2 or 3 arguments");
  args.dir = positional[0];
  args.user = positional[1];
  if (positional.size() == 3) args.k = positional[2];
  return args;
}

// k as a whole number in [1, num_items]: "abc", "3x", "" and values past int64 are refused.
int64_t parse_k(const std::string& text, size_t num_items) {
  errno = 0;
  char* end = nullptr;
  const long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || end != text.c_str() + text.size())
    throw std::invalid_argument("k must be a whole number, got '" + text + "'");
  if (errno == ERANGE || value < 1 || static_cast<unsigned long long>(value) > num_items)
    throw std::invalid_argument("k must be in [1, " + std::to_string(num_items) +
                                "] (the catalogue size), got " + text);
  return static_cast<int64_t>(value);
}

// The path of `relative` inside the export, after its sha256 matched the one given for it.
std::string checked(const Args& args, const std::string& relative) {
  const std::string path = args.dir + "/" + relative;
  const auto expected = args.sha256.find(relative);
  if (expected == args.sha256.end()) {
    std::cerr << "warning: " << relative << " read without a --sha256 to check it against\n";
    return path;
  }
  const std::string actual = sha256_file(path);
  if (actual != expected->second)
    throw std::runtime_error(path + ": sha256 " + actual.substr(0, 12) +
                             "... does not match the given one (" + expected->second.substr(0, 12) +
                             "...); the file was altered or corrupted after export");
  return path;
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);  // split on "\n" alone
  return lines;
}

int run(const Args& args) {
  const auto users = read_lines(checked(args, "vocab/users.txt"));
  const auto items = read_lines(checked(args, "vocab/items.txt"));
  const int64_t k = parse_k(args.k, items.size());
  std::unordered_map<std::string, int64_t> index;
  for (size_t i = 0; i < users.size(); ++i) index.emplace(users[i], static_cast<int64_t>(i));

  auto found = index.find(args.user);
  if (found == index.end()) {
    const auto popular = read_lines(checked(args, "vocab/popular_items.txt"));
    std::cout << "unknown user " << args.user << ": most popular items instead\n";
    for (int64_t r = 0; r < k && r < static_cast<int64_t>(popular.size()); ++r)
      std::cout << r + 1 << "\t" << popular[r] << "\tnan\n";
    return 0;
  }

  torch::jit::script::Module retriever = torch::jit::load(checked(args, "retriever.pt"));
  retriever.eval();
  torch::NoGradGuard no_grad;
  auto user_idx = torch::tensor({found->second}, torch::kInt64);
  auto out = retriever.forward({user_idx, k}).toTuple();
  auto scores = out->elements()[0].toTensor();
  auto item_idx = out->elements()[1].toTensor();
  for (int64_t r = 0; r < item_idx.size(1); ++r) {
    const float s = scores[0][r].item<float>();
    if (std::isinf(s) && s < 0) break;  // seen items come last with -inf
    const int64_t item = item_idx[0][r].item<int64_t>();
    if (item < 0 || item >= static_cast<int64_t>(items.size()))
      throw std::runtime_error("retriever returned item index " + std::to_string(item) +
                               ", outside vocab/items.txt");
    std::cout << r + 1 << "\t" << items[item] << "\t" << std::setprecision(6) << s << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse_args(argc, argv));
  } catch (const std::exception& err) {
    // Bad arguments, altered files and the module's own validation (torch::jit errors) alike.
    std::string message = err.what();
    const auto last = message.find_last_not_of('\n');
    message = message.substr(0, last == std::string::npos ? 0 : last + 1);
    std::cerr << "error: " << message.substr(message.rfind('\n') + 1) << "\n";
    return kUsage;
  }
}
