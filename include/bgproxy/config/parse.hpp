#pragma once
/// bgproxy::config — loading and validating a configuration file.
/// Thread: any. Pure apart from `load_file`, which reads the file.

#include <string>
#include <string_view>

#include <boost/system/result.hpp>

#include "bgproxy/config/config.hpp"

namespace bgproxy::config {

/// Why a configuration was refused. `message` is the form `bgproxy --check` prints
/// "FILE:LINE: field: problem", e.g. "bg.yaml:12: services[0].blue.servers[1]: bad port".
struct ConfigError {
  std::string message;
};

/// Lets boost::system::result<T, ConfigError>::value() throw on error.
[[noreturn]] void throw_exception_from_error(const ConfigError& e, const boost::source_location& loc);

/// Parses and validates YAML text.
/// @param text the YAML document
/// @param file_name used as FILE in error messages
/// @return the configuration with every default filled in, or the first problem found
boost::system::result<Config, ConfigError> parse(std::string_view text, std::string_view file_name);

/// Reads `path` and calls parse(); a missing/unreadable file is a ConfigError naming it.
boost::system::result<Config, ConfigError> load_file(const std::string& path);

/// Parses "500ms", "2s", "5m", "1h" (also "1.5s"). @return nullopt when malformed.
std::optional<Duration> parse_duration(std::string_view text);

/// Parses "host:port", "[v6]:port". @return nullopt when malformed or the port is not 1..65535.
std::optional<Endpoint> parse_endpoint(std::string_view text);

/// Parses "10.0.0.0/8", "::1/128", or a bare address (= /32 or /128). @return nullopt when malformed.
std::optional<Cidr> parse_cidr(std::string_view text);

}  // namespace bgproxy::config
