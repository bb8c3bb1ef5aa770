#include "tests/support/nginx.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace silo::testing {

Nginx::Nginx(std::string dir, std::string root) : dir_(std::move(dir)), root_(std::move(root)) {
  std::filesystem::create_directories(dir_ + "/temp");
}

Nginx::~Nginx() {
  Stop();
}

std::string Nginx::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + "/" + path;
}

void Nginx::Start() {
  for (int attempt = 0; attempt < 5; ++attempt) {
    port_ = FreeLoopbackPort();
    std::ofstream conf(dir_ + "/nginx.conf");
    conf << "daemon off;\nmaster_process on;\nworker_processes 1;\nuser root;\n"
         << "pid " << dir_ << "/nginx.pid;\nerror_log " << dir_ << "/error.log;\n"
         << "events { worker_connections 512; }\nhttp {\n"
         << "  log_format bytes '$status $body_bytes_sent \"$http_range\"';\n"
         << "  access_log " << dir_ << "/access.log bytes;\n";
    for (const char* t : {"client_body", "proxy", "fastcgi", "uwsgi", "scgi"})
      conf << "  " << t << "_temp_path " << dir_ << "/temp/" << t << ";\n";
    conf << "  sendfile on;\n  server { listen 127.0.0.1:" << port_ << "; root " << root_ << "; }\n}\n";
    conf.close();
    ProcessOptions o;
    o.argv = {"nginx", "-c", dir_ + "/nginx.conf", "-p", dir_};
    o.stdout_path = dir_ + "/nginx.out";
    o.stderr_path = dir_ + "/nginx.out";
    process_ = Process(o);
    for (int i = 0; i < 100; ++i) {
      std::string out;
      if (RunCommand({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url("")}, &out) == 0 && out != "000")
        return;
      if (!process_.Running()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    process_.Stop();
  }
  std::ifstream log(dir_ + "/error.log");
  std::stringstream ss;
  ss << log.rdbuf();
  throw std::runtime_error("nginx did not start: " + ss.str());
}

void Nginx::Stop() {
  process_.Stop();
}

uint64_t Nginx::BytesSent() const {
  std::ifstream in(access_log_path());
  uint64_t total = 0;
  int status = 0;
  uint64_t bytes = 0;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    if (ls >> status >> bytes && status >= 200 && status < 300) total += bytes;
  }
  return total;
}

}  // namespace silo::testing
