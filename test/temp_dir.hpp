// A fresh directory under /tmp for a test's files (Unix socket paths), removed with whatever
// is left in it when the test ends.
#pragma once

#include <dirent.h>
#include <stdlib.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <string>

namespace test_support {

class TempDir {
 public:
  TempDir() {
    char name[] = "/tmp/asyncuv-test-XXXXXX";
    REQUIRE(::mkdtemp(name) != nullptr);
    path = name;
  }
  ~TempDir() {
    if (DIR* dir = ::opendir(path.c_str())) {
      while (dirent* entry = ::readdir(dir)) {
        if (entry->d_name[0] != '.') ::unlink(file(entry->d_name).c_str());
      }
      ::closedir(dir);
    }
    ::rmdir(path.c_str());
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  /// The path of `name` inside the directory.
  std::string file(const std::string& name) const { return path + "/" + name; }

  std::string path;
};

}  // namespace test_support
