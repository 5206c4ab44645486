// Client::Impl's token: authenticating (once for all who wait), and forgetting a refused token.
#include <boost/asio/post.hpp>

#include "control/cluster/etcd_client_impl.hpp"

namespace bgproxy::cluster {

void Client::Impl::with_token(std::function<void(std::optional<EtcdError>)> then) {
  if (!needs_token() || !token_.empty()) {
    net::post(ioc_, [then = std::move(then)] { then(std::nullopt); });
    return;
  }
  token_waiters_.push_back(std::move(then));
  if (authenticating_) return;
  authenticating_ = true;
  authenticate([self = shared_from_this()](EtcdResult<AuthResult> r) {
    self->authenticating_ = false;
    std::optional<EtcdError> error;
    if (!r) error = r.error();
    auto waiters = std::move(self->token_waiters_);
    for (auto& w : waiters) w(error);
  });
}

void Client::Impl::authenticate(Handler<AuthResult> h) {
  submit(
      path::authenticate, authenticate_request(options_.username, options_.password), true,
      [self = shared_from_this(), h = std::move(h)](EtcdResult<std::string> body) {
        EtcdResult<AuthResult> r = body ? parse_authenticate(*body) : EtcdResult<AuthResult>(body.error());
        if (!r && r.error().message == "etcdserver: authentication is not enabled") {
          // Credentials configured for a cluster without auth: send no token until it asks.
          self->auth_disabled_ = true;
          self->token_.clear();
          return h(AuthResult{});
        }
        if (!r && r.error().kind == EtcdError::Kind::server && r.error().code == grpc_code::invalid_argument) {
          EtcdError e = r.error();
          e.kind = EtcdError::Kind::auth;
          return h(e);
        }
        if (r) self->token_ = r->token;
        h(std::move(r));
      },
      false);
}

void Client::Impl::token_rejected(const std::string& token) {
  if (token_ == token) token_.clear();
}

}  // namespace bgproxy::cluster
