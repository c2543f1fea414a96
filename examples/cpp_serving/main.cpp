// Top-k for one user from an export directory, with libtorch only:
//   recommend <export_dir> <raw user id> [k]
// Loads retriever.pt (TorchScript), maps the raw id through vocab/users.txt, prints
// "rank<TAB>item id<TAB>score" per line. Unknown users get vocab/popular_items.txt.
// sha256 checks are left to the deployment (see recsys/serving/loader.py for the manifest format).
#include <torch/script.h>

#include <cmath>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <string>
#include <unordered_map>
#include <vector>

static std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: recommend <export_dir> <raw user id> [k]\n";
    return 2;
  }
  const std::string dir = argv[1], user = argv[2];
  const int64_t k = argc > 3 ? std::stoll(argv[3]) : 10;
  try {
    const auto users = read_lines(dir + "/vocab/users.txt");
    const auto items = read_lines(dir + "/vocab/items.txt");
    std::unordered_map<std::string, int64_t> index;
    for (size_t i = 0; i < users.size(); ++i) index.emplace(users[i], static_cast<int64_t>(i));

    auto found = index.find(user);
    if (found == index.end()) {
      const auto popular = read_lines(dir + "/vocab/popular_items.txt");
      std::cout << "unknown user " << user << ": most popular items instead\n";
      for (int64_t r = 0; r < k && r < static_cast<int64_t>(popular.size()); ++r)
        std::cout << r + 1 << "\t" << popular[r] << "\tnan\n";
      return 0;
    }

    torch::jit::script::Module retriever = torch::jit::load(dir + "/retriever.pt");
    retriever.eval();
    torch::NoGradGuard no_grad;
    auto user_idx = torch::tensor({found->second}, torch::kInt64);
    auto out = retriever.forward({user_idx, k}).toTuple();
    auto scores = out->elements()[0].toTensor();
    auto item_idx = out->elements()[1].toTensor();
    for (int64_t r = 0; r < item_idx.size(1); ++r) {
      const float s = scores[0][r].item<float>();
      if (std::isinf(s) && s < 0) break;  // seen items come last with -inf
      std::cout << r + 1 << "\t" << items[item_idx[0][r].item<int64_t>()] << "\t" << std::setprecision(6)
                << s << "\n";
    }
  } catch (const std::exception& err) {
    // torch::jit errors carry the module's validation message (k out of range, ...).
    std::cerr << "error: " << err.what() << "\n";
    return 2;
  }
  return 0;
}
