#include "tests/support/fault_proxy.h"

#include <filesystem>
#include <stdexcept>
#include <thread>

#include "tests/support/store_test.h"
#include "tests/support/token_registry.h"

namespace silo::testing {

FaultProxy::FaultProxy(const std::string& dir, const std::string& upstream, const std::vector<std::string>& args)
    : log_path_(dir + "/proxy-requests.log"), out_path_(dir + "/proxy.out") {
  std::filesystem::create_directories(dir);
  ProcessOptions po;
  po.argv = {"python3", FaultProxyScript(), "--listen-port", "0", "--upstream", upstream, "--log", log_path_};
  po.argv.insert(po.argv.end(), args.begin(), args.end());
  po.env = {{"PYTHONUNBUFFERED", "1"}};
  po.stdout_path = po.stderr_path = out_path_;
  process_ = Process(po);
  for (int i = 0; i < 500 && port_ == 0 && process_.Running(); ++i) {
    std::string out = ReadFileToString(out_path_);
    size_t at = out.find("listening on 127.0.0.1:");
    if (at != std::string::npos) port_ = std::atoi(out.c_str() + at + 23);
    if (port_ == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (port_ == 0) throw std::runtime_error("fault_proxy.py did not start:\n" + ReadFileToString(out_path_));
}

std::vector<std::string> FaultProxy::Log() const {
  std::vector<std::string> out;
  std::string text = ReadFileToString(log_path_);
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    if (nl > start) out.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

std::string FaultProxy::Output() const {
  return ReadFileToString(out_path_);
}

}  // namespace silo::testing
