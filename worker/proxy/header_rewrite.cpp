#include "worker/proxy/header_rewrite.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <utility>

namespace huginn::worker::proxy {

using http1::Header;
using http1::Headers;
using http1::iequals;

namespace {

void erase_named(Headers& h, std::string_view name) {
  h.erase(std::remove_if(h.begin(), h.end(), [&](const Header& x) { return iequals(x.name, name); }),
          h.end());
}

void set_header(Headers& h, std::string_view name, std::string value) {
  erase_named(h, name);
  h.push_back(Header{std::string(name), std::move(value)});
}

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

// Dropped whatever Connection lists: RFC 9110 §7.6.1's fixed names, the
// framing fields and Proxy-*.
bool always_hop_by_hop(std::string_view name) {
  static constexpr std::string_view kFixed[] = {
      "connection", "keep-alive", "te", "transfer-encoding", "upgrade", "trailer", "content-length"};
  for (auto f : kFixed)
    if (iequals(name, f)) return true;
  return starts_with_ci(name, "proxy-");
}

void apply_security(Headers& h, const config::SecurityHeaders& sec, bool tls) {
  for (const auto& c : sec.custom) set_header(h, c.name, c.value);
  if (sec.csp.enabled) set_header(h, "content-security-policy", sec.csp.policy);
  if (tls && sec.hsts.enabled) {
    std::string v = "max-age=" + std::to_string(sec.hsts.max_age);
    if (sec.hsts.include_subdomains) v += "; includeSubDomains";
    if (sec.hsts.preload) v += "; preload";
    set_header(h, "strict-transport-security", std::move(v));
  }
}

const config::SecurityHeaders& security_block(const config::Config& cfg, const config::Domain* d,
                                              const config::Route* r) {
  if (r != nullptr && r->security.headers) return *r->security.headers;
  if (d != nullptr && d->security.headers) return *d->security.headers;
  return cfg.security.headers;
}

}  // namespace

std::vector<std::string> connection_tokens(const Headers& headers) {
  std::vector<std::string> out;
  for (const auto& h : headers) {
    if (!iequals(h.name, "connection")) continue;
    std::string_view v = h.value;
    while (!v.empty()) {
      const size_t comma = v.find(',');
      const std::string_view tok = http1::trim_ows(v.substr(0, comma));
      // A name dropped anyway (`keep-alive`, the usual token) is not kept:
      // no vector is allocated for the common `Connection: keep-alive`.
      if (!tok.empty() && !always_hop_by_hop(tok)) out.push_back(http1::to_lower(tok));
      v = comma == std::string_view::npos ? std::string_view() : v.substr(comma + 1);
    }
  }
  return out;
}

bool is_hop_by_hop(std::string_view name, const std::vector<std::string>& tokens) {
  if (always_hop_by_hop(name)) return true;
  for (const auto& t : tokens)
    if (iequals(name, t)) return true;
  return false;
}

bool is_well_formed_xff(std::string_view value) {
  if (http1::trim_ows(value).empty()) return false;
  while (true) {
    const size_t comma = value.find(',');
    const std::string_view item = http1::trim_ows(value.substr(0, comma));
    if (item.empty() || item.size() >= INET6_ADDRSTRLEN) return false;
    char buf[INET6_ADDRSTRLEN];
    item.copy(buf, item.size());
    buf[item.size()] = '\0';
    unsigned char addr[sizeof(in6_addr)];
    if (inet_pton(AF_INET, buf, addr) != 1 && inet_pton(AF_INET6, buf, addr) != 1) return false;
    if (comma == std::string_view::npos) return true;
    value.remove_prefix(comma + 1);
  }
}

void apply_header_ops(Headers& headers, const config::HeaderOps& ops) {
  for (const auto& name : ops.remove) erase_named(headers, name);
  for (const auto& add : ops.add) set_header(headers, add.name, add.value);
}

namespace {

// True when a remove or add of the request's manipulation scopes names one of
// `names` (case-insensitively, as apply_header_ops matches).
bool ops_name_any(const RequestContext& ctx, const std::string_view* names, size_t count) {
  const config::HeaderOps* scopes[] = {&ctx.cfg->headers.request,
                                       ctx.domain ? &ctx.domain->headers.request : nullptr,
                                       ctx.route ? &ctx.route->headers.request : nullptr};
  for (const config::HeaderOps* ops : scopes) {
    if (ops == nullptr) continue;
    for (size_t i = 0; i < count; ++i) {
      for (const auto& r : ops->remove)
        if (iequals(r, names[i])) return true;
      for (const auto& a : ops->add)
        if (iequals(a.name, names[i])) return true;
    }
  }
  return false;
}

}  // namespace

Headers rewrite_request(Headers in, const RequestContext& ctx, http1::HeaderRefs* refs) {
  const config::Config& cfg = *ctx.cfg;
  const auto tokens = connection_tokens(in);
  const auto& fh = cfg.fingerprint.headers;
  const std::string_view fp_names[] = {fh.ja4,    fh.ja4_r, fh.ja4_o,       fh.ja4_or,
                                       fh.akamai, fh.tcp,   kSpoofingHeader};
  bool spoofed[std::size(fp_names)] = {};

  // Filtered in place: the kept fields move to the front, nothing is copied.
  Headers& out = in;
  std::string client_host;
  bool have_client_host = false;
  std::string xff;
  bool have_xff = false;
  size_t kept = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    Header& h = in[i];
    if (iequals(h.name, "host")) {
      client_host = std::move(h.value);
      have_client_host = true;
      continue;
    }
    // 1. hop-by-hop
    if (is_hop_by_hop(h.name, tokens)) continue;
    // 2. client copies of fingerprint headers
    bool fp = false;
    for (size_t k = 0; k < std::size(fp_names); ++k) {
      if (iequals(h.name, fp_names[k])) {
        spoofed[k] = true;
        fp = true;
      }
    }
    if (fp) continue;
    // 4. forwarding headers are rebuilt below
    if (iequals(h.name, kXForwardedFor)) {
      if (have_xff) xff.append(", ");
      xff.append(h.value);
      have_xff = true;
      continue;
    }
    if (iequals(h.name, kXForwardedProto) || iequals(h.name, kXForwardedHost) ||
        iequals(h.name, kXForwardedPort))
      continue;
    if (kept != i) in[kept] = std::move(h);
    ++kept;
  }
  in.erase(in.begin() + static_cast<std::ptrdiff_t>(kept), in.end());

  // Which injected fields go by reference (see the header): none that the
  // configured manipulation names, so that its remove and add apply to them.
  const bool gate = ctx.route && ctx.route->fingerprinting
                        ? *ctx.route->fingerprinting
                        : (ctx.domain && ctx.domain->fingerprinting ? *ctx.domain->fingerprinting : true);
  const bool inject = gate && ctx.fingerprints != nullptr;
  const std::string_view inject_names[] = {fh.ja4, fh.ja4_r, fh.ja4_o, fh.ja4_or, fh.akamai, fh.tcp};
  const bool fp_by_ref =
      refs != nullptr && inject && !ops_name_any(ctx, inject_names, std::size(inject_names));
  const std::string_view xf_names[] = {kXForwardedFor, kXForwardedProto, kXForwardedHost, kXForwardedPort};
  const bool xf_by_ref = refs != nullptr && !ops_name_any(ctx, xf_names, std::size(xf_names));
  // Host, the spoofing report, and what is listed of steps 3 and 4.
  out.reserve(kept + 2 + (inject && !fp_by_ref ? std::size(inject_names) : 0) + (xf_by_ref ? 1 : 4));

  // 2. spoofing report
  std::string spoof_list;
  for (size_t i = 0; i < std::size(fp_names); ++i) {
    if (!spoofed[i]) continue;
    if (!spoof_list.empty()) spoof_list.push_back(',');
    spoof_list.append(fp_names[i]);
  }
  if (!spoof_list.empty()) out.push_back(Header{std::string(kSpoofingHeader), std::move(spoof_list)});

  // 3. fingerprints of this connection, if the scope allows injection
  if (inject) {
    const auto& f = *ctx.fingerprints;
    using K = ConnectionFingerprints;
    const std::pair<const std::string*, K::Kind> fields[] = {
        {&fh.ja4, K::kJa4},      {&fh.ja4_r, K::kJa4R},    {&fh.ja4_o, K::kJa4O},
        {&fh.ja4_or, K::kJa4Or}, {&fh.akamai, K::kAkamai}, {&fh.tcp, K::kTcp}};
    for (const auto& [name, kind] : fields) {
      const auto value = f.get(kind);
      if (!value) continue;
      if (!fp_by_ref || !refs->push(*name, *value)) out.push_back(Header{*name, std::string(*value)});
    }
  }

  // 4. X-Forwarded-*: a client's well-formed X-Forwarded-For list gets the
  // peer appended (a new value, so listed); the others are referenced when
  // they can be.
  const std::string_view proto = ctx.tls ? "https" : "http";
  char port_text[8];
  const auto port_end = std::to_chars(port_text, port_text + sizeof port_text, ctx.local_port).ptr;
  const std::string_view port(port_text, static_cast<size_t>(port_end - port_text));
  if (have_xff && is_well_formed_xff(xff)) {
    out.push_back(Header{std::string(kXForwardedFor),
                         std::string(http1::trim_ows(xff)) + ", " + std::string(ctx.peer_ip)});
  } else if (!xf_by_ref || !refs->push(kXForwardedFor, ctx.peer_ip)) {
    out.push_back(Header{std::string(kXForwardedFor), std::string(ctx.peer_ip)});
  }
  if (!xf_by_ref || !refs->push(kXForwardedProto, proto))
    out.push_back(Header{std::string(kXForwardedProto), std::string(proto)});
  if (!ctx.host.empty() && (!xf_by_ref || !refs->push(kXForwardedHost, ctx.host)))
    out.push_back(Header{std::string(kXForwardedHost), std::string(ctx.host)});
  if (!xf_by_ref || !refs->push_owned(kXForwardedPort, port))
    out.push_back(Header{std::string(kXForwardedPort), std::string(port)});

  // 5. configured manipulation: global, domain, route
  apply_header_ops(out, cfg.headers.request);
  if (ctx.domain) apply_header_ops(out, ctx.domain->headers.request);
  if (ctx.route) apply_header_ops(out, ctx.route->headers.request);

  // 6. Host (configuration cannot override it; it decides preserve_host)
  erase_named(out, "host");
  std::string host_value;
  if (cfg.preserve_host && have_client_host) {
    host_value = client_host;
  } else if (ctx.backend != nullptr) {
    host_value = ctx.backend->address;
  } else {
    host_value = client_host;
  }
  out.insert(out.begin(), Header{"Host", std::move(host_value)});
  return in;  // `out` is `in`: moved out, not copied
}

Headers rewrite_response(Headers in, const RequestContext& ctx) {
  const auto tokens = connection_tokens(in);
  // Filtered in place, like the request.
  Headers& out = in;
  out.erase(
      std::remove_if(out.begin(), out.end(), [&](const Header& h) { return is_hop_by_hop(h.name, tokens); }),
      out.end());
  apply_security(out, security_block(*ctx.cfg, ctx.domain, ctx.route), ctx.tls);
  apply_header_ops(out, ctx.cfg->headers.response);
  if (ctx.domain) apply_header_ops(out, ctx.domain->headers.response);
  if (ctx.route) apply_header_ops(out, ctx.route->headers.response);
  return in;  // `out` is `in`: moved out, not copied
}

Headers security_headers(const config::Config& cfg, const config::Domain* domain, const config::Route* route,
                         bool tls) {
  Headers out;
  apply_security(out, security_block(cfg, domain, route), tls);
  return out;
}

}  // namespace huginn::worker::proxy
