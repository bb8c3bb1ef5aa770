#include "tests/support/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <utility>

namespace silo::testing {
namespace {

using Clock = std::chrono::steady_clock;

std::string Errno(const std::string& what, int err) {
  return what + ": " + std::strerror(err);
}

// Closes an fd when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { Reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void Reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

int OpenLog(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error(Errno("open " + path, errno));
  return fd;
}

// Exit code, or 128 + signal, from a waitpid status.
int DecodeStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// waitpid that retries on EINTR. Returns the pid when reaped, 0 if still running, -1 if
// the child is not ours to wait for (ECHILD).
pid_t WaitPid(pid_t pid, int* status, bool block) {
  for (;;) {
    pid_t r = ::waitpid(pid, status, block ? 0 : WNOHANG);
    if (r >= 0 || errno != EINTR) return r;
  }
}

// What the child reports through the exec-status pipe when it cannot run the program.
struct ExecFailure {
  int stage;  // 1 chdir, 2 exec, 3 redirect
  int err;
};

struct SpawnSpec {
  const std::vector<std::string>* argv = nullptr;
  const std::map<std::string, std::string>* env = nullptr;
  const std::vector<std::string>* env_drop_prefixes = nullptr;
  std::string cwd;
  int stdout_fd = -1;  // -1: inherit
  int stderr_fd = -1;
  bool die_with_parent = true;
};

struct SpawnResult {
  pid_t pid = -1;
  std::string error;  // set (and the child reaped) when the program could not be run
};

std::vector<std::string> BuildEnv(const SpawnSpec& spec) {
  std::vector<std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view var(*e);
    std::string_view name = var.substr(0, var.find('='));
    bool drop = spec.env != nullptr && spec.env->count(std::string(name)) != 0;
    if (spec.env_drop_prefixes != nullptr) {
      for (const auto& prefix : *spec.env_drop_prefixes) {
        if (name.substr(0, prefix.size()) == prefix) drop = true;
      }
    }
    if (!drop) out.emplace_back(var);
  }
  if (spec.env != nullptr) {
    for (const auto& [name, value] : *spec.env) out.push_back(name + "=" + value);
  }
  return out;
}

// Moves fd onto target in the child (async-signal-safe calls only).
bool Redirect(int fd, int target) {
  if (fd < 0) return true;
  if (fd == target) return ::fcntl(fd, F_SETFD, 0) == 0;  // keep it across exec
  return ::dup2(fd, target) == target;
}

[[noreturn]] void ChildFail(int report_fd, int stage) {
  ExecFailure f{stage, errno};
  [[maybe_unused]] ssize_t n = ::write(report_fd, &f, sizeof f);
  ::_exit(127);
}

SpawnResult Spawn(const SpawnSpec& spec) {
  const auto& argv = *spec.argv;
  if (argv.empty()) throw std::runtime_error("spawn: empty argv");

  // Everything the child needs is prepared before fork: after fork only async-signal-safe
  // calls are allowed (the test process may have other threads).
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  std::vector<std::string> env = BuildEnv(spec);
  std::vector<char*> cenv;
  for (auto& e : env) cenv.push_back(e.data());
  cenv.push_back(nullptr);

  Fd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (devnull.get() < 0) throw std::runtime_error(Errno("open /dev/null", errno));
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) throw std::runtime_error(Errno("pipe", errno));
  Fd report_read(report[0]);
  Fd report_write(report[1]);

  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(Errno("fork " + argv[0], errno));
  if (pid == 0) {
    if (spec.die_with_parent) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);  // the parent died before prctl
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl;
    std::memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGCHLD}) ::sigaction(sig, &dfl, nullptr);
    if (!Redirect(devnull.get(), 0) || !Redirect(spec.stdout_fd, 1) || !Redirect(spec.stderr_fd, 2)) {
      ChildFail(report_write.get(), 3);
    }
    if (!spec.cwd.empty() && ::chdir(spec.cwd.c_str()) != 0) ChildFail(report_write.get(), 1);
    ::execvpe(cargv[0], cargv.data(), cenv.data());
    ChildFail(report_write.get(), 2);
  }

  // The read end sees EOF when exec succeeds (close-on-exec) or the failure report.
  report_write.Reset();
  ExecFailure failure{};
  ssize_t n;
  do {
    n = ::read(report_read.get(), &failure, sizeof failure);
  } while (n < 0 && errno == EINTR);
  SpawnResult result;
  if (n <= 0) {
    result.pid = pid;
    return result;
  }
  int status = 0;
  WaitPid(pid, &status, true);
  switch (failure.stage) {
    case 1:
      result.error = Errno("chdir " + spec.cwd + " (to run " + argv[0] + ")", failure.err);
      break;
    case 2:
      result.error = Errno("cannot execute " + argv[0], failure.err);
      break;
    default:
      result.error = Errno("redirect the output of " + argv[0], failure.err);
      break;
  }
  return result;
}

}  // namespace

Process::Process(const Options& options) {
  Fd out_fd;
  Fd err_fd;
  if (!options.stdout_path.empty()) out_fd.Reset(OpenLog(options.stdout_path));
  if (!options.stderr_path.empty() && options.stderr_path != options.stdout_path) {
    err_fd.Reset(OpenLog(options.stderr_path));
  }
  SpawnSpec spec;
  spec.argv = &options.argv;
  spec.env = &options.env;
  spec.env_drop_prefixes = &options.env_drop_prefixes;
  spec.cwd = options.cwd;
  spec.stdout_fd = out_fd.get();
  spec.stderr_fd = options.stderr_path.empty()                  ? -1
                   : options.stderr_path == options.stdout_path ? out_fd.get()
                                                                : err_fd.get();
  spec.die_with_parent = options.die_with_parent;
  SpawnResult r = Spawn(spec);
  if (!r.error.empty()) throw std::runtime_error(r.error);
  pid_ = r.pid;
}

Process::~Process() {
  Stop();
}

Process::Process(Process&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), exit_status_(std::exchange(other.exit_status_, std::nullopt)) {}

Process& Process::operator=(Process&& other) noexcept {
  if (this != &other) {
    Stop();
    pid_ = std::exchange(other.pid_, -1);
    exit_status_ = std::exchange(other.exit_status_, std::nullopt);
  }
  return *this;
}

bool Process::Reap(bool block) {
  if (pid_ < 0) return true;
  int status = 0;
  pid_t r = WaitPid(pid_, &status, block);
  if (r == 0) return false;
  exit_status_ = r == pid_ ? DecodeStatus(status) : -1;  // -1: reaped elsewhere (ECHILD)
  pid_ = -1;
  return true;
}

bool Process::Running() {
  return pid_ >= 0 && !Reap(false);
}

std::optional<int> Process::Wait(std::chrono::milliseconds timeout) {
  if (pid_ < 0) return exit_status_;
  const auto deadline = Clock::now() + timeout;
  auto pause = std::chrono::milliseconds(1);
  while (!Reap(false)) {
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(20));
  }
  return exit_status_;
}

int Process::Stop(std::chrono::milliseconds grace) {
  if (pid_ >= 0) {
    ::kill(pid_, SIGTERM);
    if (!Wait(grace)) {
      ::kill(pid_, SIGKILL);
      Reap(true);
    }
  }
  return exit_status_.value_or(-1);
}

int RunCommand(const std::vector<std::string>& argv, std::string* output, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error(Errno("pipe", errno));
  Fd read_end(fds[0]);
  Fd write_end(fds[1]);
  SpawnSpec spec;
  spec.argv = &argv;
  spec.stdout_fd = write_end.get();
  spec.stderr_fd = write_end.get();
  SpawnResult r = Spawn(spec);
  write_end.Reset();
  if (output != nullptr) output->clear();
  if (!r.error.empty()) {
    if (output != nullptr) *output = r.error + "\n";
    return 127;
  }

  auto remaining_ms = [&] {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    return static_cast<int>(std::max<std::chrono::milliseconds::rep>(0, left.count()));
  };
  auto kill_for_timeout = [&] {
    ::kill(r.pid, SIGKILL);
    int status = 0;
    WaitPid(r.pid, &status, true);
    if (output != nullptr) {
      *output += "\n[" + argv[0] + " killed after " + std::to_string(timeout.count()) + " ms]\n";
    }
    return 124;
  };

  // Read until EOF (every writer closed the pipe).
  char buf[16384];
  for (;;) {
    pollfd p{read_end.get(), POLLIN, 0};
    int ready = ::poll(&p, 1, remaining_ms());
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) return kill_for_timeout();
    ssize_t n = ::read(read_end.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (output != nullptr) output->append(buf, static_cast<size_t>(n));
  }
  // The output is closed; the program normally exits right after.
  auto pause = std::chrono::milliseconds(1);
  for (;;) {
    int status = 0;
    pid_t w = WaitPid(r.pid, &status, false);
    if (w == r.pid) return DecodeStatus(status);
    if (w < 0) return -1;
    if (remaining_ms() == 0) return kill_for_timeout();
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(20));
  }
}

int FreeLoopbackPort() {
  Fd sock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (sock.get() < 0) throw std::runtime_error(Errno("socket", errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    throw std::runtime_error(Errno("bind 127.0.0.1:0", errno));
  }
  socklen_t len = sizeof addr;
  if (::getsockname(sock.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw std::runtime_error(Errno("getsockname", errno));
  }
  return ntohs(addr.sin_port);
}

}  // namespace silo::testing
