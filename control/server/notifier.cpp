#include "control/server/notifier.hpp"

#include <deque>
#include <optional>
#include <string>
#include <utility>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <spdlog/spdlog.h>

#include "control/core/notification.hpp"

namespace bgproxy::control {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

/// One receiver: its queue and the notification being sent, one at a time, on a fresh
/// connection each (receivers are few and events rare; no pool to go stale). Owned by its
/// pending operations and by the Notifier while configured.
class Notifier::Hook : public std::enable_shared_from_this<Notifier::Hook> {
 public:
  Hook(net::io_context& ioc, config::Webhook cfg, std::shared_ptr<NotificationCounts> counts)
      : ioc_(ioc), cfg_(std::move(cfg)), counts_(std::move(counts)), resolver_(ioc), timer_(ioc) {}

  const config::Webhook& config() const noexcept { return cfg_; }

  void push(const Event& e) {
    if (stopped_) return;
    if (queue_.size() > max_queued) {  // the front is being sent; max_queued wait behind it
      ++counts_->dropped;
      spdlog::warn("notify {}: queue full ({} waiting): {} event for {} dropped", cfg_.url, queue_.size() - 1, e.kind,
                   e.service);
      return;
    }
    queue_.push_back({notification_body(e, cfg_.format), e.kind + " event for " + e.service});
    if (!busy_) next();
  }

  void stop() {
    stopped_ = true;
    counts_->dropped += queue_.size();
    queue_.clear();
    error_code ignored;
    timer_.cancel();
    resolver_.cancel();
    if (stream_) stream_->socket().close(ignored);
  }

 private:
  struct Pending {
    std::string body;
    std::string what;  ///< for the log
  };

  void next() {
    if (stopped_ || queue_.empty()) {
      busy_ = false;
      return;
    }
    busy_ = true;
    attempt_ = 1;
    do_attempt();
  }

  void do_attempt() {
    stream_.emplace(ioc_);
    // One deadline for the whole attempt: connect, send and the answer.
    stream_->expires_after(cfg_.timeout);
    req_ = {http::verb::post, cfg_.target, 11};
    const bool v6 = cfg_.host.find(':') != std::string::npos;
    req_.set(http::field::host, (v6 ? "[" + cfg_.host + "]" : cfg_.host) + ":" + std::to_string(cfg_.port));
    req_.set(http::field::user_agent, "bgproxy");
    req_.set(http::field::content_type, "application/json");
    req_.set(http::field::connection, "close");
    req_.body() = queue_.front().body;
    req_.prepare_payload();
    resolver_.async_resolve(cfg_.host, std::to_string(cfg_.port),
                            [self = shared_from_this()](error_code ec, tcp::resolver::results_type r) {
                              if (ec) return self->on_result("cannot resolve " + self->cfg_.host + ": " + ec.message());
                              self->stream_->async_connect(r, [self](error_code ec, const tcp::endpoint&) {
                                if (ec) return self->on_result(self->why("connect", ec));
                                self->do_write();
                              });
                            });
  }

  void do_write() {
    http::async_write(*stream_, req_, [self = shared_from_this()](error_code ec, std::size_t) {
      if (ec) return self->on_result(self->why("send", ec));
      self->res_.emplace();
      self->res_->body_limit(64 * 1024);
      http::async_read(*self->stream_, self->buffer_, *self->res_, [self](error_code ec, std::size_t) {
        if (ec) return self->on_result(self->why("answer", ec));
        const unsigned status = self->res_->get().result_int();
        if (status >= 200 && status < 300) return self->on_result({});
        self->on_result("answered " + std::to_string(status));
      });
    });
  }

  std::string why(std::string_view stage, error_code ec) const {
    if (ec == beast::error::timeout) return std::string(stage) + ": timed out after " + std::to_string(cfg_.timeout.count()) + "ms";
    return std::string(stage) + ": " + ec.message();
  }

  /// @param problem empty: delivered
  void on_result(std::string problem) {
    error_code ignored;
    if (stream_) stream_->socket().close(ignored);
    buffer_.clear();
    if (stopped_) return;
    if (problem.empty()) {
      ++counts_->sent;
      queue_.pop_front();
      return next();
    }
    if (attempt_ < max_attempts) {
      ++counts_->retried;
      const auto delay = first_backoff * (1 << (attempt_ - 1));
      spdlog::info("notify {}: {} attempt {} failed ({}); again in {}ms", cfg_.url, queue_.front().what, attempt_,
                   problem, delay.count());
      ++attempt_;
      timer_.expires_after(delay);
      timer_.async_wait([self = shared_from_this()](error_code ec) {
        if (ec || self->stopped_) return;
        self->do_attempt();
      });
      return;
    }
    ++counts_->failed;
    spdlog::warn("notify {}: {} not delivered after {} attempts: {}", cfg_.url, queue_.front().what, attempt_, problem);
    queue_.pop_front();
    next();
  }

  net::io_context& ioc_;
  config::Webhook cfg_;
  std::shared_ptr<NotificationCounts> counts_;
  tcp::resolver resolver_;
  net::steady_timer timer_;  ///< backoff between attempts
  std::optional<beast::tcp_stream> stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> req_;
  std::optional<http::response_parser<http::string_body>> res_;
  std::deque<Pending> queue_;  ///< front: the one being sent
  int attempt_ = 0;
  bool busy_ = false;
  bool stopped_ = false;
};

Notifier::Notifier(net::io_context& ioc) : ioc_(ioc) {}

Notifier::~Notifier() { stop(); }

void Notifier::configure(const config::Notify& notify) {
  hooks_.clear();  // pending operations keep the old ones until their queues are sent
  for (const auto& w : notify.webhooks) hooks_.push_back(std::make_shared<Hook>(ioc_, w, counts_));
}

void Notifier::notify(const Event& e) {
  if (!e.here) return;  // in a fleet, the member that made the change tells
  for (const auto& h : hooks_)
    if (wants(h->config(), e)) h->push(e);
}

void Notifier::stop() {
  for (const auto& h : hooks_) h->stop();
  hooks_.clear();
}

}  // namespace bgproxy::control
