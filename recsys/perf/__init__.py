"""CPU speed layer, opt-in: reused scratch buffers, torch.compile wrappers, the allocator setting,
and the training-memory estimate."""
