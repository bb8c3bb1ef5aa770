#include "tests/integration/serve_support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>
#include <thread>

#include "tests/support/imagegen.h"
#include "tests/support/store_test.h"
#include "util/hash.h"

namespace silo::testing {

SiloServer::SiloServer(std::string store, std::string log_path, std::vector<std::string> extra, bool tls)
    : log_path_(std::move(log_path)), tls_(tls) {
  for (int attempt = 0; attempt < 5; ++attempt) {
    port_ = FreeLoopbackPort();
    ProcessOptions o;
    o.argv = {SILO_BINARY, "--store", store, "serve", "--listen", host_port()};
    o.argv.insert(o.argv.end(), extra.begin(), extra.end());
    o.stdout_path = log_path_;
    o.stderr_path = log_path_;
    process_ = Process(o);
    for (int i = 0; i < 200; ++i) {
      if (!process_.Running()) break;
      std::vector<std::string> argv = {"curl",         "-s",        "-o", "/dev/null",  "-w",
                                       "%{http_code}", "--noproxy", "*",  "--max-time", "2"};
      if (tls_) argv.push_back("-k");
      argv.push_back(url() + "/healthz");
      std::string out;
      if (RunCommand(argv, &out) == 0 && out == "200") return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    std::string text = log();
    process_.Stop();
    if (text.find("Address already in use") == std::string::npos) {
      throw std::runtime_error("silo serve did not come up:\n" + text);
    }
  }
  throw std::runtime_error("silo serve: no free port");
}

std::string SiloServer::log() const {
  return ReadFileToString(log_path_);
}

HttpResult Curl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"curl", "-sS", "-i", "--noproxy", "*", "--max-time", "120"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string out;
  int rc = RunCommand(argv, &out);
  HttpResult r;
  if (rc != 0) {
    r.status = -rc;
    r.body = out;
    return r;
  }
  // Skip interim responses (100 Continue); parse the last header block.
  size_t pos = 0;
  while (true) {
    size_t end = out.find("\r\n\r\n", pos);
    if (end == std::string::npos) {
      r.body = out;
      return r;
    }
    std::string head = out.substr(pos, end - pos);
    pos = end + 4;
    int status = 0;
    if (head.size() > 12 && head.starts_with("HTTP/")) status = std::stoi(head.substr(head.find(' ') + 1, 3));
    if (status == 100) continue;
    r.status = status;
    size_t line_start = head.find("\r\n");
    while (line_start != std::string::npos) {
      size_t next = head.find("\r\n", line_start + 2);
      std::string line =
          head.substr(line_start + 2, next == std::string::npos ? std::string::npos : next - line_start - 2);
      size_t colon = line.find(':');
      if (colon != std::string::npos) {
        std::string name = line.substr(0, colon);
        std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
        std::string value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.erase(0, 1);
        r.headers[name] = value;
      }
      line_start = next;
    }
    r.body = out.substr(pos);
    return r;
  }
}

std::string RawExchange(int port, const std::string& bytes, bool read) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    throw std::runtime_error("connect");
  }
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may close early (a refused header)
    sent += static_cast<size_t>(n);
  }
  std::string out;
  if (read) {
    char buf[65536];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

std::string DigestOf(const std::string& data) {
  return "sha256:" + ToHex(Sha256::Of(AsBytes(data)));
}

TempDir* RegistrySuite::suite_tmp_ = nullptr;
Registry* RegistrySuite::registry_ = nullptr;
std::vector<std::string>* RegistrySuite::refs_ = nullptr;

void RegistrySuite::SetUpTestSuite() {
  suite_tmp_ = new TempDir();
  registry_ = new Registry(*suite_tmp_ / "registry");
  registry_->Start();
  refs_ = new std::vector<std::string>(PushImageSet(registry_->host_port(), *suite_tmp_ / "gen"));
}

void RegistrySuite::TearDownTestSuite() {
  delete registry_;
  delete refs_;
  delete suite_tmp_;
  registry_ = nullptr;
  refs_ = nullptr;
  suite_tmp_ = nullptr;
}

}  // namespace silo::testing
