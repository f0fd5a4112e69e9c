#include "supervisor/ctl/fingerprint_cmd.h"

#include <json/json.h>

#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/pcap/flow_fingerprints.h"
#include "common/pcap/flows.h"

namespace {

constexpr const char* kUsage = "usage: huginnctl fingerprint --pcap FILE [--json]\n";

std::string endpoint(const huginn::capture::Flow& f, bool client) {
  const std::string& addr = client ? f.src : f.dst;
  const uint16_t port = client ? f.src_port : f.dst_port;
  if (f.ip_version == 6) return "[" + addr + "]:" + std::to_string(port);
  return addr + ":" + std::to_string(port);
}

void print_text(std::ostream& out, const huginn::capture::Flow& f,
                const huginn::capture::FlowFingerprints& fps) {
  out << endpoint(f, true) << " -> " << endpoint(f, false) << "\n";
  const auto line = [&out](const char* key, const std::string& value) {
    out << "  " << key << std::string(8 - std::string_view(key).size(), ' ') << value << "\n";
  };
  if (fps.ja4) {
    line("ja4", fps.ja4->ja4);
    line("ja4_r", fps.ja4->ja4_r);
    line("ja4_o", fps.ja4->ja4_o);
    line("ja4_or", fps.ja4->ja4_or);
  }
  if (fps.akamai) line("akamai", *fps.akamai);
  if (fps.tcp) line("tcp", *fps.tcp);
}

void print_json(std::ostream& out, const Json::StreamWriterBuilder& builder, const huginn::capture::Flow& f,
                const huginn::capture::FlowFingerprints& fps) {
  Json::Value v(Json::objectValue);
  v["src"] = f.src;
  v["src_port"] = f.src_port;
  v["dst"] = f.dst;
  v["dst_port"] = f.dst_port;
  if (fps.ja4) {
    v["ja4"] = fps.ja4->ja4;
    v["ja4_r"] = fps.ja4->ja4_r;
    v["ja4_o"] = fps.ja4->ja4_o;
    v["ja4_or"] = fps.ja4->ja4_or;
  }
  if (fps.akamai) v["akamai"] = *fps.akamai;
  if (fps.tcp) v["tcp"] = *fps.tcp;
  out << Json::writeString(builder, v) << "\n";
}

}  // namespace

int run_fingerprint_command(int argc, char** argv, std::ostream& out, std::ostream& err) {
  std::string path;
  bool have_path = false;
  bool json = false;
  for (int i = 0; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--json") {
      json = true;
    } else if (arg == "--pcap") {
      if (i + 1 >= argc) {
        err << "huginnctl fingerprint: --pcap needs a file name\n" << kUsage;
        return 2;
      }
      path = argv[++i];
      have_path = true;
    } else if (arg.substr(0, 7) == "--pcap=") {
      path = std::string(arg.substr(7));
      have_path = true;
    } else if (arg == "-h" || arg == "--help") {
      out << kUsage;
      return 0;
    } else {
      err << "huginnctl fingerprint: unknown argument '" << arg << "'\n" << kUsage;
      return 2;
    }
  }
  if (!have_path || path.empty()) {
    err << "huginnctl fingerprint: --pcap FILE is required\n" << kUsage;
    return 2;
  }

  auto result = huginn::capture::read_flows(path);
  if (auto* error = std::get_if<std::string>(&result)) {
    err << "huginnctl fingerprint: " << *error << "\n";
    return 1;
  }
  const auto& flows = std::get<std::vector<huginn::capture::Flow>>(result);

  Json::StreamWriterBuilder builder;
  builder["indentation"] = "";
  builder["emitUTF8"] = true;
  for (const auto& f : flows) {
    const auto fps = huginn::capture::fingerprint_flow(f);
    if (json) {
      print_json(out, builder, f, fps);
    } else {
      print_text(out, f, fps);
    }
  }
  out.flush();
  if (!out) {
    err << "huginnctl fingerprint: cannot write the output\n";
    return 1;
  }
  return 0;
}
