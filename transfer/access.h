// Access control for `silo serve`: which client addresses may connect (--allow CIDR, as
// hsync's Allowed_host), which credentials read and which write (bearer tokens or an
// htpasswd file, each separately for read and for write), which share paths are never
// served (--deny-file GLOB, --deny-dir PATH: hsync's Forbidden_file and Forbidden_dir), and
// the decoding of a request path into a share-relative path that cannot leave the share.
//
// Pure logic apart from reading htpasswd files; an AccessControl is immutable after
// construction and safe to use from many threads at once.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/result.h"

namespace silo::transfer {

// An IPv4 or IPv6 network. An IPv4 network also matches IPv4-mapped IPv6 addresses
// (::ffff:10.1.2.3), which is how a dual-stack listener reports IPv4 clients.
class Cidr {
 public:
  // "10.0.0.0/8", "fd00::/8", or a single address ("127.0.0.1", "::1"). InvalidArgument
  // naming the text when it is not one.
  static Result<Cidr> Parse(std::string_view text);
  // Whether the address (text form, as a socket reports it) lies inside. False for text
  // that is no address.
  bool Contains(std::string_view address) const;
  std::string ToString() const;

 private:
  std::array<uint8_t, 16> addr_{};  // IPv4 in the first 4 bytes
  int prefix_ = 0;
  bool v4_ = false;
};

// Entries of an htpasswd file: bcrypt ($2y$/$2b$/$2a$, `htpasswd -B`), SHA-crypt ($5$/$6$)
// and {SHA} (`htpasswd -s`). Apache's $apr1$ MD5 and plain-text entries are refused at load.
class Htpasswd {
 public:
  // Parses "user:hash" lines (blank lines and # comments skipped). `what` names the source
  // in errors ("FILE:LINE: ...").
  static Result<Htpasswd> Parse(std::string_view text, const std::string& what);
  static Result<Htpasswd> Load(const std::string& path);
  // Whether `password` is the user's. bcrypt is slow by design, so accepted pairs are
  // remembered (by SHA-256 of user and password) for the life of the object. Thread-safe.
  bool Check(std::string_view user, std::string_view password) const;
  size_t size() const { return users_.size(); }

 private:
  std::map<std::string, std::string, std::less<>> users_;
  struct Cache;
  std::shared_ptr<Cache> cache_;
};

// What a request needs: reading (GET, HEAD) or writing (PUT, POST, PATCH, DELETE).
enum class Need { kRead, kWrite };

struct AccessPolicy {
  std::vector<Cidr> allow;  // empty: every address
  // Globs (fnmatch) against a file's or directory's base name, or, when the glob holds a
  // '/', against the whole share-relative path.
  std::vector<std::string> deny_files;
  // Share-relative directories ("private", "logs/old") or absolute directories on disk;
  // they and everything beneath are never served or listed.
  std::vector<std::string> deny_dirs;
  // Credentials. When none is configured for reading, reading is open; likewise writing.
  // Where reading needs credentials, write credentials grant it too.
  std::vector<std::string> read_tokens;
  std::vector<std::string> write_tokens;
  std::optional<Htpasswd> read_htpasswd;
  std::optional<Htpasswd> write_htpasswd;
};

// The outcome of a check: status 0 when allowed, else the HTTP status to answer (401 with
// a WWW-Authenticate challenge, 403) and a reason for the log and the error body.
struct Decision {
  int status = 0;
  std::string reason;
  bool allowed() const { return status == 0; }
};

class AccessControl {
 public:
  explicit AccessControl(AccessPolicy policy);

  // 403 when an allow list is set and `address` lies outside every network.
  Decision CheckPeer(std::string_view address) const;
  // 401 when credentials are needed and the Authorization header value (may be empty)
  // carries none that grant `need`: "Bearer TOKEN" or "Basic base64(user:password)".
  Decision CheckAuth(std::string_view authorization, Need need) const;
  // 403 when the share-relative path (normalized, "" for the share root) or any directory
  // above it is denied. `abs_path` is the path on disk (for absolute --deny-dir entries;
  // may be empty).
  Decision CheckPath(std::string_view rel_path, std::string_view abs_path) const;

  bool read_open() const;
  const AccessPolicy& policy() const { return policy_; }

 private:
  AccessPolicy policy_;
};

// Decodes the path part of a request target below a share ("a/b%20c/d.txt") into a
// normalized share-relative path ("a/b c/d.txt"; "" for the root). Empty and "." segments
// are dropped. InvalidArgument (answer 403: the path would escape the share) for a ".."
// segment, a segment that decodes to contain '/' or NUL (%2f, %00), a backslash, or a
// malformed escape. Percent-decoding happens once, so "%252e%252e" stays the literal name.
Result<std::string> DecodeSharePath(std::string_view encoded);

// Percent-encodes a share-relative path for a URL (keeps '/', unreserved characters).
std::string EncodeSharePath(std::string_view path);

}  // namespace silo::transfer
