// The org.huginn.Proxy1 D-Bus service on the supervisor's libevent loop.
//
// sdbus-c++ 1.2 exposes the connection's poll data (fd, events, absolute
// timeout); we watch the fd with a one-shot libevent event and the timeout
// with a timer, drain with processPendingRequest() on wake-up and re-arm from
// fresh poll data (the events change: POLLOUT appears while replies are
// queued). Replies sent outside a processing round (a finished Reload, a
// signal) re-arm too, so queued output is flushed.
#include "supervisor/dbus_service.h"

#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <sdbus-c++/sdbus-c++.h>
#include <unistd.h>

#include <algorithm>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "build_info.h"
#include "common/sys/c_handle.h"
#include "common/sys/log.h"

namespace huginn::supervisor {
namespace {

constexpr const char* kBusName = "org.huginn.Proxy1";
constexpr const char* kObjectPath = "/org/huginn/Proxy1";
constexpr const char* kInterface = "org.huginn.Proxy1";
constexpr const char* kAccessDenied = "org.huginn.Proxy1.Error.AccessDenied";
constexpr const char* kInvalidArgs = "org.freedesktop.DBus.Error.InvalidArgs";
constexpr const char* kFailed = "org.freedesktop.DBus.Error.Failed";
constexpr const char* kAdminGroup = "huginn-admin";

using EventHandle = sys::CHandle<event, event_free>;

// gid of the admin group, or nullopt when the group does not exist.
std::optional<gid_t> admin_gid() {
  long hint = sysconf(_SC_GETGR_R_SIZE_MAX);
  std::vector<char> buf(hint > 0 ? static_cast<size_t>(hint) : 4096);
  for (;;) {
    group grp{};
    group* result = nullptr;
    int rc = getgrnam_r(kAdminGroup, &grp, buf.data(), buf.size(), &result);
    if (rc == ERANGE && buf.size() < (1u << 20)) {
      buf.resize(buf.size() * 2);
      continue;
    }
    if (rc != 0 || result == nullptr) return std::nullopt;
    return result->gr_gid;
  }
}

std::unique_ptr<sdbus::IConnection> connect(const std::string& bus) {
  if (bus == "system") return sdbus::createSystemBusConnection();
  if (bus == "session") return sdbus::createSessionBusConnection();
  // Any other string is a bus address; sd-bus speaks the bus protocol
  // (Hello, name requests) on it whatever the bus type.
  return sdbus::createSessionBusConnectionWithAddress(bus);
}

class DbusServiceImpl final : public DbusService {
 public:
  DbusServiceImpl(event_base* base, Control& control) : base_(base), control_(control) {}

  ~DbusServiceImpl() override {
    // Reloads still running must not touch us when they finish.
    *alive_ = false;
    io_.reset();
    timer_.reset();
    if (object_) object_->unregister();
    object_.reset();
    if (conn_) {
      try {
        conn_->releaseName(kBusName);
      } catch (const sdbus::Error&) {
        // The connection is closed below anyway; the bus drops the name then.
      }
    }
  }

  bool start(const std::string& bus, std::string* error) {
    try {
      conn_ = connect(bus);
      object_ = sdbus::createObject(*conn_, kObjectPath);
      register_interface();
      conn_->requestName(kBusName);
    } catch (const sdbus::Error& e) {
      *error = "D-Bus (" + bus + "): " + e.getName() + ": " + e.getMessage();
      return false;
    }
    io_.reset(event_new(base_, -1, 0, &DbusServiceImpl::on_wake, this));
    timer_.reset(evtimer_new(base_, &DbusServiceImpl::on_wake, this));
    if (!io_ || !timer_) {
      *error = "D-Bus: cannot allocate libevent events";
      return false;
    }
    arm();
    const std::string where = bus == "system" || bus == "session" ? "the " + bus + " bus" : "bus " + bus;
    HLOG_INFO("D-Bus: serving %s at %s on %s", kBusName, kObjectPath, where.c_str());
    return true;
  }

  void emit_reloaded(uint32_t generation, bool ok, const std::string& message) override {
    if (broken_) return;
    try {
      object_->emitSignal("Reloaded").onInterface(kInterface).withArguments(generation, ok, message);
      object_->emitPropertiesChangedSignal(kInterface, {"Generation"});
    } catch (const sdbus::Error& e) {
      HLOG_WARN("D-Bus: cannot emit Reloaded: %s: %s", e.getName().c_str(), e.getMessage().c_str());
    }
    rearm_after_send();
  }

 private:
  void register_interface() {
    object_->registerMethod("Reload")
        .onInterface(kInterface)
        .withOutputParamNames("ok", "message")
        .implementedAs([this](sdbus::Result<bool, std::string>&& result) {
          guarded("Reload", [&] { on_reload(std::move(result)); });
        });
    object_->registerMethod("CheckConfig")
        .onInterface(kInterface)
        .withInputParamNames("path")
        .withOutputParamNames("ok", "errors")
        .implementedAs([this](const std::string& path) {
          return guarded("CheckConfig", [&] { return on_check_config(path); });
        });
    object_->registerMethod("GetStatus")
        .onInterface(kInterface)
        .withOutputParamNames("json")
        .implementedAs([this]() { return guarded("GetStatus", [this] { return control_.status_json(); }); });
    object_->registerSignal("Reloaded")
        .onInterface(kInterface)
        .withParameters<uint32_t, bool, std::string>("generation", "ok", "message");
    object_->registerProperty("Generation").onInterface(kInterface).withGetter([this]() {
      return control_.generation();
    });
    object_->registerProperty("Version")
        .onInterface(kInterface)
        .withGetter([]() { return std::string(build::kVersion); })
        .withUpdateBehavior(sdbus::Flags::CONST_PROPERTY_VALUE);
    object_->finishRegistration();
  }

  // sdbus-c++ turns sdbus::Error into an error reply but lets any other
  // exception unwind through sd-bus's C code; translate those here.
  template <typename Fn>
  static auto guarded(const char* method, Fn&& fn) -> decltype(fn()) {
    try {
      return fn();
    } catch (const sdbus::Error&) {
      throw;
    } catch (const std::exception& e) {
      HLOG_ERROR("D-Bus: %s failed: %s", method, e.what());
      throw sdbus::Error(kFailed, std::string(method) + " failed: " + e.what());
    }
  }

  // Throws AccessDenied unless the caller of the message being processed is
  // root or in the admin group (primary or supplementary). Credentials the bus
  // cannot supply count as "not allowed".
  void require_admin(const char* method) const {
    const sdbus::Message* msg = object_->getCurrentlyProcessedMessage();
    std::string who = "unknown caller";
    if (msg != nullptr) {
      try {
        const uid_t uid = msg->getCredsUid();
        who = "uid " + std::to_string(uid);
        if (uid == 0) return;
        if (auto gid = admin_gid()) {
          if (msg->getCredsGid() == *gid) return;
          const std::vector<gid_t> groups = msg->getCredsSupplementaryGids();
          if (std::find(groups.begin(), groups.end(), *gid) != groups.end()) return;
        }
      } catch (const sdbus::Error& e) {
        HLOG_WARN("D-Bus: %s: cannot read caller credentials: %s", method, e.getMessage().c_str());
      }
    }
    HLOG_WARN("D-Bus: %s refused for %s (not root, not in group %s)", method, who.c_str(), kAdminGroup);
    throw sdbus::Error(kAccessDenied,
                       std::string(method) + " requires root or membership in group " + kAdminGroup);
  }

  void on_reload(sdbus::Result<bool, std::string>&& result) {
    require_admin("Reload");
    HLOG_INFO("D-Bus: Reload requested");
    // ReloadDone is a std::function (copyable); Result is move-only.
    auto shared = std::make_shared<sdbus::Result<bool, std::string>>(std::move(result));
    std::weak_ptr<bool> alive = alive_;
    control_.reload([this, shared, alive](bool ok, const std::string& message) {
      auto a = alive.lock();
      if (!a || !*a || broken_) return;
      try {
        shared->returnResults(ok, message);
      } catch (const sdbus::Error& e) {
        // The caller may have gone away (timeout, disconnect): not our problem.
        HLOG_DEBUG("D-Bus: Reload reply not sent: %s", e.getMessage().c_str());
      }
      rearm_after_send();
    });
  }

  std::tuple<bool, std::vector<std::string>> on_check_config(const std::string& path) {
    if (path.size() >= PATH_MAX) {
      throw sdbus::Error(kInvalidArgs, "path is longer than " + std::to_string(PATH_MAX - 1) + " bytes");
    }
    std::vector<std::string> errors = control_.check_config(path);
    const bool ok = errors.empty();
    return {ok, std::move(errors)};
  }

  static void on_wake(evutil_socket_t, short, void* arg) { static_cast<DbusServiceImpl*>(arg)->process(); }

  void process() {
    if (broken_) return;
    in_process_ = true;
    try {
      while (conn_->processPendingRequest()) {
      }
    } catch (const sdbus::Error& e) {
      // The bus connection is gone (bus daemon died, we were kicked off):
      // stop watching a dead fd instead of spinning on it.
      HLOG_ERROR("D-Bus: connection lost, control service disabled: %s: %s", e.getName().c_str(),
                 e.getMessage().c_str());
      broken_ = true;
    }
    in_process_ = false;
    arm();
  }

  void rearm_after_send() {
    if (!in_process_) arm();
  }

  void arm() {
    event_del(io_.get());
    event_del(timer_.get());
    if (broken_) return;
    sdbus::IConnection::PollData pd{};
    try {
      pd = conn_->getEventLoopPollData();
    } catch (const sdbus::Error& e) {
      HLOG_ERROR("D-Bus: cannot get poll data, control service disabled: %s", e.getMessage().c_str());
      broken_ = true;
      return;
    }
    short what = 0;
    if (pd.events & POLLIN) what |= EV_READ;
    if (pd.events & POLLOUT) what |= EV_WRITE;
    if (what != 0) {
      event_assign(io_.get(), base_, pd.fd, what, &DbusServiceImpl::on_wake, this);
      event_add(io_.get(), nullptr);
    }
    const int ms = pd.getPollTimeout();
    if (ms >= 0) {
      timeval tv{ms / 1000, (ms % 1000) * 1000};
      evtimer_add(timer_.get(), &tv);
    }
  }

  event_base* base_;
  Control& control_;
  std::unique_ptr<sdbus::IConnection> conn_;
  std::unique_ptr<sdbus::IObject> object_;
  EventHandle io_;
  EventHandle timer_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  bool in_process_ = false;
  bool broken_ = false;
};

}  // namespace

std::unique_ptr<DbusService> DbusService::create(event_base* base, const std::string& bus, Control& control,
                                                 std::string* error) {
  auto service = std::make_unique<DbusServiceImpl>(base, control);
  std::string err;
  if (!service->start(bus, &err)) {
    if (error) {
      *error = err;
    } else {
      HLOG_ERROR("%s", err.c_str());
    }
    return nullptr;
  }
  return service;
}

}  // namespace huginn::supervisor
