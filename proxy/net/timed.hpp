#pragma once
/// A connection with a deadline, enforced by its worker's periodic sweep rather
/// than by a timer per operation (the HAProxy/nginx way: arming and cancelling a
/// timer on every read and write costs more than the I/O it guards).

#include <boost/intrusive/list_hook.hpp>

#include "bgproxy/routing/routing_table.hpp"
#include "proxy/net/types.hpp"

namespace bgproxy::proxy {

class Timed : public boost::intrusive::list_base_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>> {
 public:
  /// Called on the worker thread once `deadline_` has passed; must close whatever is waiting.
  virtual void on_deadline() = 0;
  /// Called on the worker thread when the worker starts draining (SIGTERM).
  virtual void on_drain() = 0;
  /// Called on the worker thread once `shed_at_` has passed: an idle connection gives back the
  /// memory it only needs while an exchange runs (issue 14).
  virtual void on_shed() = 0;
  /// Called on the worker thread by `bgctl rollback --drain`: an exchange in flight to `color` of
  /// `service` ends now. @return whether there was one to cut
  virtual bool on_cut(int /*service*/, routing::Color /*color*/) { return false; }

  Clock::time_point deadline() const noexcept { return deadline_; }
  Clock::time_point shed_at() const noexcept { return shed_at_; }

 protected:
  Timed() = default;
  ~Timed() = default;
  Clock::time_point deadline_ = Clock::time_point::max();
  Clock::time_point shed_at_ = Clock::time_point::max();
};

}  // namespace bgproxy::proxy
