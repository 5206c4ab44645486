#include "proxy/net/reactor_records.hpp"

#include "proxy/net/asio_release.hpp"

#ifdef BGPROXY_ASIO_181_EPOLL
#include <boost/asio/detail/conditionally_enabled_mutex.hpp>
#include <boost/asio/detail/epoll_reactor.hpp>
#include <boost/asio/detail/object_pool.hpp>
#endif

namespace bgproxy::proxy {

#ifdef BGPROXY_ASIO_181_EPOLL
namespace {

namespace adetail = boost::asio::detail;
using Record = adetail::epoll_reactor::descriptor_state;
using RecordPool = adetail::object_pool<Record>;

/// Names a private member: the language does not check access in an explicit instantiation
/// ([temp.spec.general]/6), and the friend it defines hands the member pointer out.
template <class Tag, typename Tag::type Member>
struct PrivateMember {
  friend constexpr typename Tag::type member(Tag) { return Member; }
};

struct PoolOfReactor {
  using type = RecordPool adetail::epoll_reactor::*;
  friend constexpr type member(PoolOfReactor);
};
struct LockOfPool {
  using type = adetail::conditionally_enabled_mutex adetail::epoll_reactor::*;
  friend constexpr type member(LockOfPool);
};
struct FreeListOfPool {
  using type = Record* RecordPool::*;
  friend constexpr type member(FreeListOfPool);
};

template struct PrivateMember<PoolOfReactor, &adetail::epoll_reactor::registered_descriptors_>;
template struct PrivateMember<LockOfPool, &adetail::epoll_reactor::registered_descriptors_mutex_>;
template struct PrivateMember<FreeListOfPool, &RecordPool::free_list_>;

}  // namespace

std::size_t release_retired_reactor_records(boost::asio::io_context& ctx) {
  auto& reactor = boost::asio::use_service<adetail::epoll_reactor>(ctx);
  adetail::conditionally_enabled_mutex::scoped_lock lock(reactor.*member(LockOfPool{}));
  Record*& free_list = (reactor.*member(PoolOfReactor{})).*member(FreeListOfPool{});
  std::size_t released = 0;
  while (Record* r = free_list) {
    free_list = adetail::object_pool_access::next(r);
    adetail::object_pool_access::destroy(r);
    ++released;
  }
  return released;
}
#else
std::size_t release_retired_reactor_records(boost::asio::io_context&) { return 0; }
#endif

}  // namespace bgproxy::proxy
