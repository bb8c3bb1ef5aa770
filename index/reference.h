// Image references as Docker reads them: "nginx" is docker.io/library/nginx:latest,
// "host:5000/team/app@sha256:…" keeps its registry port and digest.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "util/result.h"

namespace silo::index {

struct Reference {
  std::string registry;    // "docker.io", "127.0.0.1:5000"
  std::string repository;  // "library/nginx"
  std::string tag;         // empty when only a digest was given
  std::string digest;      // "sha256:…", empty when absent

  // "registry/repository:tag@digest", with the parts present.
  std::string ToString() const;
  // The reference to fetch: the digest when known, else the tag.
  std::string Identifier() const { return digest.empty() ? tag : digest; }
};

// Parses `text`. `default_registry` applies when the reference names none (Docker's rule:
// a first component with '.', ':' or equal to "localhost" is a registry).
Result<Reference> ParseReference(std::string_view text, std::string_view default_registry = "docker.io");

}  // namespace silo::index
