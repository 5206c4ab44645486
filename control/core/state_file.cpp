#include <cerrno>
#include <cstdio>
#include <ctime>
#include <exception>
#include <string>
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control/core/fd.hpp"
#include "control/core/state_file.hpp"

namespace bgproxy::control {

namespace {

/// A state file is ours and small (1000 history entries are about 250 KB); anything far larger
/// is not one, and reading it whole would only cost memory.
constexpr off_t max_state_bytes = 64 * 1024 * 1024;

std::string errno_text(int err) { return std::generic_category().message(err); }

std::string directory_of(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

/// Writes, flushes and closes the temp file; on failure returns the errno of the failing step.
int write_temp(const std::string& tmp, std::string_view data) {
  Fd fd(::open(tmp.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0640));
  if (fd.get() < 0) return errno;
  if (!write_all(fd.get(), data)) return errno;
  if (::fsync(fd.get()) != 0) return errno;
  // close() can report a deferred write error (NFS); it must not be retried on EINTR.
  if (::close(fd.release()) != 0 && errno != EINTR) return errno;
  return 0;
}

/// fsync of the directory makes the rename itself durable. Filesystems that cannot fsync a
/// directory say EINVAL; there is nothing more to do on those.
int sync_directory(const std::string& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return errno;
  if (::fsync(fd.get()) != 0 && errno != EINVAL) return errno;
  return 0;
}

/// Renames `from` to `to` unless `to` exists. Returns 0, EEXIST, or another errno.
int rename_no_replace(const std::string& from, const std::string& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return 0;
  const int err = errno;
  if (err != EINVAL && err != ENOSYS) return err;
  // The filesystem has no RENAME_NOREPLACE: check first (only this process writes here).
  struct stat st {};
  if (::lstat(to.c_str(), &st) == 0) return EEXIST;
  if (::rename(from.c_str(), to.c_str()) != 0) return errno;
  return 0;
}

/// Moves a corrupt file to "<path>.corrupt-<unix seconds>", then "...-1", "...-2", ...
/// Returns 0 and sets `moved`, or the errno of the failed rename.
int move_aside(const std::string& path, std::string& moved) {
  std::string base = path;
  base += ".corrupt-";
  base += std::to_string(static_cast<long long>(::time(nullptr)));
  constexpr int max_suffix = 10000;
  for (int i = 0; i <= max_suffix; ++i) {
    moved = base;
    if (i != 0) {
      moved += '-';
      moved += std::to_string(i);
    }
    const int err = rename_no_replace(path, moved);
    if (err != EEXIST) return err;
  }
  return EEXIST;
}

}  // namespace

StateFile::Loaded StateFile::load() {
  const auto cannot_read = [&](int err) {
    return Loaded{std::nullopt, "cannot read state file " + path_ + ": " + errno_text(err)};
  };

  Fd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return {};
    return cannot_read(errno);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return cannot_read(errno);
  // A directory or a device in its place is a setup mistake to fix, not a corrupt file to move.
  if (S_ISDIR(st.st_mode)) return cannot_read(EISDIR);
  if (!S_ISREG(st.st_mode)) return cannot_read(EINVAL);

  std::string why;
  std::string text;
  if (st.st_size > max_state_bytes) {
    why = "larger than " + std::to_string(max_state_bytes / (1024 * 1024)) + " MiB";
  } else {
    text.reserve(static_cast<std::size_t>(st.st_size));
    char buf[65536];
    for (;;) {
      const ssize_t n = ::read(fd.get(), buf, sizeof buf);
      if (n < 0) {
        if (errno == EINTR) continue;
        return cannot_read(errno);
      }
      if (n == 0) break;
      text.append(buf, static_cast<std::size_t>(n));
      if (text.size() > static_cast<std::size_t>(max_state_bytes)) {
        why = "larger than " + std::to_string(max_state_bytes / (1024 * 1024)) + " MiB";
        break;
      }
    }
  }

  if (why.empty()) {
    if (text.empty()) {
      why = "empty file";
    } else {
      auto parsed = from_json(text);
      if (parsed) return Loaded{std::move(*parsed), ""};
      why = std::move(parsed.error());
    }
  }

  std::string moved;
  if (const int err = move_aside(path_, moved); err != 0) {
    return Loaded{std::nullopt, "state file " + path_ + " is corrupt (" + why +
                                    "); cannot move it aside: " + errno_text(err)};
  }
  return Loaded{std::nullopt,
                "state file " + path_ + " is corrupt (" + why + "); moved to " + moved};
}

boost::system::result<void, std::string> StateFile::save(const State& s) {
  const auto fail = [&](int err) -> boost::system::result<void, std::string> {
    return "cannot write state file " + path_ + ": " + errno_text(err);
  };

  std::string text;
  try {
    text = to_json(s);
    text += '\n';
  } catch (const std::exception& e) {
    return "cannot write state file " + path_ + ": " + e.what();
  }

  const std::string tmp = path_ + ".tmp-" + std::to_string(::getpid());
  if (const int err = write_temp(tmp, text); err != 0) {
    ::unlink(tmp.c_str());
    return fail(err);
  }
  if (::rename(tmp.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return fail(err);
  }
  if (const int err = sync_directory(directory_of(path_)); err != 0) return fail(err);
  return {};
}

}  // namespace bgproxy::control
