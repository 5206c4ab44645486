// Client's public face: the options of `cluster:`, create(), and the kv, lease and watch calls.
#include "control/cluster/etcd_client.hpp"

#include <algorithm>
#include <fstream>

#include "control/cluster/etcd_client_impl.hpp"

namespace bgproxy::cluster {

using detail::make_error;
using detail::make_tls_context;

EtcdResult<ClientOptions> client_options(const config::Cluster& c) {
  ClientOptions o;
  o.endpoints = c.endpoints;
  o.username = c.username;
  o.ca_file = c.ca;
  o.certificate_file = c.certificate;
  o.private_key_file = c.private_key;
  o.timeout = std::chrono::duration_cast<Ms>(c.timeout);
  if (!c.password_file.empty()) {
    std::ifstream in(c.password_file);
    if (!in || !std::getline(in, o.password)) {
      return make_error(EtcdError::Kind::config, "cluster: cannot read password_file " + c.password_file);
    }
    if (!o.password.empty() && o.password.back() == '\r') o.password.pop_back();
  }
  return o;
}

EtcdResult<std::unique_ptr<Client>> Client::create(net::io_context& ioc, ClientOptions options) {
  if (options.endpoints.empty()) return make_error(EtcdError::Kind::config, "cluster: no etcd endpoint");
  std::shared_ptr<ssl::context> tls;
  if (std::any_of(options.endpoints.begin(), options.endpoints.end(), [](const auto& e) { return e.tls; })) {
    auto ctx = make_tls_context(options);
    if (!ctx) return ctx.error();
    tls = std::move(*ctx);
  }
  return std::unique_ptr<Client>(new Client(std::make_shared<Impl>(ioc, std::move(options), std::move(tls))));
}

Client::Client(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() { close(); }

void Client::range(std::string_view key, const RangeOptions& o, Handler<RangeResult> h) {
  impl_->request<RangeResult>(path::range, range_request(key, o), true, parse_range, std::move(h));
}

void Client::put(std::string_view key, std::string_view value, std::int64_t lease, Handler<PutResult> h) {
  impl_->request<PutResult>(path::put, put_request(key, value, lease), false, parse_put, std::move(h));
}

void Client::delete_range(std::string_view key, std::string_view range_end, Handler<DeleteResult> h) {
  impl_->request<DeleteResult>(path::delete_range, delete_request(key, range_end), false, parse_delete, std::move(h));
}

void Client::txn_cas(std::string_view key, std::int64_t expected_mod_revision, std::string_view value, std::int64_t lease,
                     Handler<CasResult> h) {
  impl_->request<CasResult>(path::txn, cas_request(key, expected_mod_revision, value, lease), false, parse_cas,
                            std::move(h));
}

void Client::lease_grant(std::chrono::seconds ttl, Handler<LeaseGrantResult> h) {
  impl_->request<LeaseGrantResult>(path::lease_grant, lease_grant_request(ttl.count()), false, parse_lease_grant,
                                   std::move(h));
}

void Client::lease_keepalive(std::int64_t id, Handler<LeaseKeepAliveResult> h) {
  impl_->request<LeaseKeepAliveResult>(path::lease_keepalive, lease_keepalive_request(id), true,
                                       parse_lease_keepalive, std::move(h));
}

void Client::lease_revoke(std::int64_t id, Handler<ResponseHeader> h) {
  impl_->request<ResponseHeader>(path::lease_revoke, lease_revoke_request(id), true, parse_header_only, std::move(h));
}

void Client::authenticate(Handler<AuthResult> h) { impl_->authenticate(std::move(h)); }

std::unique_ptr<Watch> Client::watch(WatchOptions o, Watch::Handlers h) {
  auto impl = std::make_shared<Watch::Impl>(impl_, std::move(o), std::move(h));
  impl_->add_watch(impl);
  impl->start();
  return std::make_unique<Watch>(std::move(impl));
}

const std::string& Client::current_endpoint() const { return impl_->endpoint(impl_->current()).text; }

void Client::close() { impl_->close(); }

}  // namespace bgproxy::cluster
