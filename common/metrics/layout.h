// The fixed layout of the host-wide metrics table (docs/ARCHITECTURE.md,
// "Metrics").
//
// Every counter is one u64 word at a fixed index of a worker's slot; the
// supervisor sums the slots of the live workers and a base of folded counts
// of workers that have exited. Label values are bounded by construction:
// protocol (2), method (10), a fixed set of status codes plus one "Nxx" bucket per class,
// TLS version (4) and cipher suite (a fixed list plus "other"), fixed histogram
// buckets. Nothing from a request (path, host) ever becomes a label.
//
// A slot is a fixed part (word::) followed by one per-route section
// (route_word::) per route slot of the generation's configuration
// (common/metrics/routes.h): its size depends on the configuration, and the
// route labels of a section are the route prefix and domain pattern of that
// configuration.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace huginn::metrics {

// Bumped whenever a word moves; the worker refuses a table of another layout.
inline constexpr uint32_t kLayoutVersion = 5;

enum class Protocol : uint8_t { kHttp1 = 0, kHttp2 = 1 };
inline constexpr size_t kProtocols = 2;
inline constexpr std::array<std::string_view, kProtocols> kProtocolLabels = {"HTTP/1.1", "HTTP/2.0"};

// Request methods with their own series; anything else is "OTHER" (also a
// request that failed to parse before its method was known).
inline constexpr std::array<std::string_view, 10> kMethodLabels = {
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE", "OTHER"};
inline constexpr size_t kMethods = kMethodLabels.size();
inline constexpr size_t kOtherMethod = kMethods - 1;
size_t method_index(std::string_view method);

// Exact status codes with their own series; any other code counts in the
// "Nxx" series of its class (N = 1..5), anything outside 100..599 in "5xx".
inline constexpr std::array<uint16_t, 26> kStatusCodes = {200, 201, 204, 206, 301, 302, 304, 307, 308,
                                                          400, 401, 403, 404, 405, 408, 413, 414, 421,
                                                          429, 431, 500, 501, 502, 503, 504, 505};
inline constexpr size_t kStatusSlots = kStatusCodes.size() + 5;
size_t status_index(uint16_t status);
std::string_view status_label(size_t index, char* buf4);  // buf4: room for "NNN"

// TLS versions as OpenSSL names them; anything else is "other".
inline constexpr std::array<std::string_view, 4> kTlsVersionLabels = {"TLSv1.2", "TLSv1.3", "TLSv1.1",
                                                                      "other"};
size_t tls_version_index(std::string_view openssl_name);

// Cipher suites with their own huginn_tls_handshakes_total series, as OpenSSL
// names them (SSL_CIPHER_get_name): the TLS 1.3 suites and the TLS 1.2 ECDHE
// AEAD suites [tls.options] cipher_suites accepts by IANA name
// (common/tls/ciphers.h); anything else is "other".
inline constexpr std::array<std::string_view, 12> kCipherLabels = {
    "TLS_AES_128_GCM_SHA256",        "TLS_AES_256_GCM_SHA384",        "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_AES_128_CCM_SHA256",        "TLS_AES_128_CCM_8_SHA256",      "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",   "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",   "other"};
inline constexpr size_t kCiphers = kCipherLabels.size();
size_t cipher_index(std::string_view openssl_name);

// Request duration histogram: upper bounds in microseconds (100 µs … 10 s);
// word kDurationBuckets + 0 .. kBuckets-1 count observations <= bound[i] and
// > bound[i-1] (non-cumulative; cumulated when rendered), word kBuckets counts
// the rest (+Inf).
inline constexpr std::array<uint64_t, 16> kBucketBoundsUs = {
    100,   250,    500,    1000,   2500,    5000,    10000,   25000,
    50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};
inline constexpr size_t kBuckets = kBucketBoundsUs.size();
size_t bucket_index(uint64_t duration_us);  // 0..kBuckets (kBuckets = +Inf)

// Backend error kinds (huginn_backend_errors_total{error_type}): the
// exchange failed (refused, reset, bad response: 502) or timed out (504).
enum class BackendError : uint8_t { kFailed = 0, kTimeout = 1 };
inline constexpr std::array<std::string_view, 2> kBackendErrorLabels = {"backend_error", "gateway_timeout"};
constexpr BackendError backend_error_of(uint16_t status) {
  return status == 504 ? BackendError::kTimeout : BackendError::kFailed;
}

// PROXY protocol outcomes per connection on a listener with proxy_protocol
// (huginn_proxy_protocol_*_total; the three kDropped* are
// huginn_proxy_protocol_dropped_total{reason}).
enum class ProxyProtocolEvent : uint8_t {
  kAccepted = 0,      // a header from a trusted peer, its address used
  kPassthrough,       // optional mode, no header: the peer address used
  kNoClientAddr,      // a valid header without an address (LOCAL / UNKNOWN)
  kDroppedUntrusted,  // require mode and the peer is not trusted
  kDroppedBadHeader,  // malformed header
  kDroppedTimeout,    // no complete header in time
};
inline constexpr size_t kProxyProtocolEvents = 6;
inline constexpr std::array<std::string_view, 3> kProxyProtocolDropLabels = {"untrusted_require",
                                                                             "bad_header", "timeout"};

// Rate-limit strategies (config::RateLimit::LimitBy order).
inline constexpr std::array<std::string_view, 4> kStrategyLabels = {"ip", "header", "route", "combined"};
inline constexpr size_t kStrategies = kStrategyLabels.size();

// Status classes of the per-route request series ("1xx" … "5xx"; anything
// outside 100..599 is "5xx").
inline constexpr size_t kStatusClasses = 5;
constexpr size_t status_class_index(uint16_t status) {
  return (status >= 100 && status <= 599) ? status / 100 - 1 : kStatusClasses - 1;
}

// The fingerprint computations the per-thread memo (worker/proxy/fingerprint_memo.h) serves.
enum class MemoKind : uint8_t { kTcp = 0, kJa4 = 1 };
inline constexpr std::array<std::string_view, 2> kMemoKindLabels = {"tcp", "ja4"};

// huginn_tcp_syn_lookups_total{source, result}: each SYN source that a
// connection's lookup asked (worker/syn/tcp_syn.h), with its answer. The ring
// is asked first and, when it has nothing usable, the LRU map; TCP_SAVED_SYN
// last (tcp_source = "saved_syn", or "auto" when XDP had no answer).
enum class SynLookupEvent : uint8_t {
  kRingHit = 0,   // xdp_ring: served without a system call
  kRingMiss,      // xdp_ring: not there, being written, implausible or not fresh
  kMapHit,        // xdp_map: the LRU map held a fresh record
  kMapNotFound,   // xdp_map: no record for the peer's address and port
  kMapStale,      // xdp_map: a record outside the freshness bound
  kMapInvalid,    // xdp_map: an implausible record, or a peer of no IP family
  kMapError,      // xdp_map: bpf(2) failed
  kMapNoGrant,    // xdp_map: no maps granted (no helper, or not yet)
  kSavedSynHit,   // saved_syn: the socket kept its SYN
  kSavedSynMiss,  // saved_syn: no saved SYN (or an unparsable one)
};
struct SynLookupLabel {
  std::string_view source, result;
};
inline constexpr std::array<SynLookupLabel, 10> kSynLookupLabels = {{{"xdp_ring", "hit"},
                                                                     {"xdp_ring", "miss"},
                                                                     {"xdp_map", "hit"},
                                                                     {"xdp_map", "not_found"},
                                                                     {"xdp_map", "stale"},
                                                                     {"xdp_map", "invalid"},
                                                                     {"xdp_map", "error"},
                                                                     {"xdp_map", "no_grant"},
                                                                     {"saved_syn", "hit"},
                                                                     {"saved_syn", "miss"}}};
inline constexpr size_t kSynLookupEvents = kSynLookupLabels.size();
static_assert(static_cast<size_t>(SynLookupEvent::kSavedSynMiss) + 1 == kSynLookupEvents);

// Word indices of the fixed part of a slot.
namespace word {
inline constexpr size_t kConnectionsTotal = 0;
inline constexpr size_t kConnectionsActive = 1;  // gauge: set by the worker, not folded
inline constexpr size_t kConnectionsRejected = 2;
inline constexpr size_t kTlsHandshakeErrors = 3;
inline constexpr size_t kTlsFingerprints = 4;
inline constexpr size_t kTlsFingerprintFailures = 5;
inline constexpr size_t kHttp2Fingerprints = 6;
inline constexpr size_t kHttp2FingerprintFailures = 7;
inline constexpr size_t kSynHit = 8;
inline constexpr size_t kSynMiss = 9;
inline constexpr size_t kTlsHandshakes = 10;  // + tls_version_index * kCiphers + cipher_index
// + (proto * kMethods + method) * kStatusSlots + status
inline constexpr size_t kRequests = kTlsHandshakes + kTlsVersionLabels.size() * kCiphers;
// + proto * (kBuckets + 1) + bucket
inline constexpr size_t kDuration = kRequests + kProtocols * kMethods * kStatusSlots;
inline constexpr size_t kDurationSumUs = kDuration + kProtocols * (kBuckets + 1);  // + proto
inline constexpr size_t kIpFilterAllowed = kDurationSumUs + kProtocols;
inline constexpr size_t kIpFilterDenied = kIpFilterAllowed + 1;
inline constexpr size_t kProxyProtocol = kIpFilterDenied + 1;  // + ProxyProtocolEvent
// + MemoKind * 2 + (0: hit, 1: miss)
inline constexpr size_t kFingerprintMemo = kProxyProtocol + kProxyProtocolEvents;
// + SynLookupEvent
inline constexpr size_t kSynLookups = kFingerprintMemo + 2 * 2;
inline constexpr size_t kCount = kSynLookups + kSynLookupEvents;
}  // namespace word

// Word indices of one per-route section (relative to its start).
namespace route_word {
// + (proto * kMethods + method) * kStatusClasses + status_class_index
inline constexpr size_t kRequests = 0;
// + proto * (kBuckets + 1) + bucket (as word::kDuration)
inline constexpr size_t kDuration = kRequests + kProtocols * kMethods * kStatusClasses;
inline constexpr size_t kDurationSumUs = kDuration + kProtocols * (kBuckets + 1);  // + proto
inline constexpr size_t kRateLimitAllowed = kDurationSumUs + kProtocols;           // + strategy
inline constexpr size_t kRateLimitRejected = kRateLimitAllowed + kStrategies;      // + strategy
// The route's backend (a route has exactly one): response heads by status
// class, failed exchanges by BackendError, time from the start of the
// exchange (connect included) to the response head.
inline constexpr size_t kBackendResponses = kRateLimitRejected + kStrategies;            // + status class
inline constexpr size_t kBackendErrors = kBackendResponses + kStatusClasses;             // + BackendError
inline constexpr size_t kBackendDuration = kBackendErrors + kBackendErrorLabels.size();  // + bucket
inline constexpr size_t kBackendDurationSumUs = kBackendDuration + kBuckets + 1;
inline constexpr size_t kCount = kBackendDurationSumUs + 1;
}  // namespace route_word

inline constexpr size_t kFixedWords = word::kCount;
inline constexpr size_t kRouteWords = route_word::kCount;
// Route slots per generation: at most this many (routes of every domain + 1).
inline constexpr uint32_t kMaxRouteSlots = 16384;

// Words of one slot with `route_slots` per-route sections; slots are padded
// to whole cache lines so workers never share one.
constexpr size_t slot_words(uint32_t route_slots) { return kFixedWords + size_t{route_slots} * kRouteWords; }
constexpr size_t slot_bytes(uint32_t route_slots) { return (slot_words(route_slots) * 8 + 63) / 64 * 64; }

// The fixed words of one slot as plain numbers (a read snapshot, or the base).
using Counters = std::array<uint64_t, kFixedWords>;
// The words of one per-route section.
using RouteCounters = std::array<uint64_t, kRouteWords>;

// Whether a word is a gauge (a dead worker's value is dropped, not folded).
constexpr bool is_gauge(size_t w) { return w == word::kConnectionsActive; }

}  // namespace huginn::metrics
