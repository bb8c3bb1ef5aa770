#include "transfer/server/daemon.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

namespace silo::server {
namespace {

int g_ready_fd = -1;  // the child's end of the readiness pipe

bool Alive(pid_t pid) {
  return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM);
}

// A zombie child counts as gone.
bool Running(pid_t pid) {
  if (!Alive(pid)) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (std::getline(stat, line)) {
    size_t close = line.rfind(')');
    if (close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z') return false;
  }
  return true;
}

}  // namespace

std::string PidfilePath(const std::string& store_path) {
  return store_path + "/serve.pid";
}

Status WritePidfile(const std::string& path, const ServeInfo& info) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return Status::FromErrno("pidfile " + tmp, errno);
    out << info.pid << "\n";
    for (size_t i = 0; i < info.endpoints.size(); ++i) out << (i ? " " : "") << info.endpoints[i];
    out << "\n";
    for (const auto& a : info.args) out << a << "\n";
    if (!out.flush()) return Status::FromErrno("pidfile " + tmp, errno);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Status::FromErrno("pidfile " + path, errno);
  return Status::Ok();
}

Result<std::optional<ServeInfo>> ReadPidfile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT) return std::optional<ServeInfo>();
    return Status::FromErrno("pidfile " + path, errno);
  }
  ServeInfo info;
  std::string line;
  if (!std::getline(in, line)) return std::optional<ServeInfo>();
  try {
    info.pid = static_cast<pid_t>(std::stol(line));
  } catch (...) {
    return std::optional<ServeInfo>();
  }
  if (std::getline(in, line)) {
    std::istringstream words(line);
    std::string w;
    while (words >> w) info.endpoints.push_back(w);
  }
  while (std::getline(in, line)) info.args.push_back(line);
  if (!Running(info.pid)) return std::optional<ServeInfo>();
  return std::optional<ServeInfo>(std::move(info));
}

Result<pid_t> Daemonize(const std::string& log_path) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Status::FromErrno("pipe", errno);
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return Status::FromErrno("fork", errno);
  if (pid > 0) {
    ::close(fds[1]);
    std::string msg;
    char buf[512];
    ssize_t n;
    while ((n = ::read(fds[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
      if (n > 0) msg.append(buf, static_cast<size_t>(n));
    }
    ::close(fds[0]);
    if (msg == "ok") return pid;
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (msg.empty()) msg = "the server exited before it was ready (see " + log_path + ")";
    return Status::IO(msg);
  }
  ::close(fds[0]);
  g_ready_fd = fds[1];
  ::setsid();
  int null = ::open("/dev/null", O_RDONLY);
  if (null >= 0) {
    ::dup2(null, STDIN_FILENO);
    ::close(null);
  }
  int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log >= 0) {
    ::dup2(log, STDOUT_FILENO);
    ::dup2(log, STDERR_FILENO);
    ::close(log);
  }
  return pid_t{0};
}

void DaemonReady() {
  if (g_ready_fd < 0) return;
  [[maybe_unused]] ssize_t n = ::write(g_ready_fd, "ok", 2);
  ::close(g_ready_fd);
  g_ready_fd = -1;
}

void DaemonFailed(const std::string& message) {
  if (g_ready_fd < 0) return;
  [[maybe_unused]] ssize_t n = ::write(g_ready_fd, message.data(), message.size());
  ::close(g_ready_fd);
  g_ready_fd = -1;
}

Status StopProcess(pid_t pid, std::chrono::milliseconds timeout) {
  if (::kill(pid, SIGTERM) != 0) {
    if (errno == ESRCH) return Status::Ok();
    return Status::FromErrno("kill " + std::to_string(pid), errno);
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (Running(pid)) {
    if (std::chrono::steady_clock::now() > deadline) {
      return Status::Conflict("pid " + std::to_string(pid) + " still running " +
                              std::to_string(timeout.count() / 1000) + " s after SIGTERM");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return Status::Ok();
}

}  // namespace silo::server
