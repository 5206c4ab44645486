// bgctl's human output for the answers of SPEC §7, including answers with fields missing, and the
// fleet part of the status (README "Running a fleet", SPEC §12).

#include "control/bgctl/render.hpp"

#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace bgproxy::bgctl {
namespace {

boost::json::object answer(std::string_view text) { return boost::json::parse(text).as_object(); }

// SPEC §7's examples, with the "green":{...} elided there filled in.
constexpr std::string_view status_example = R"j({"ok":true,"services":[{"name":"app","weights":{"blue":70.0,"green":30.0},
  "target":"green","phase":"canary","step":1,"reason":"canary: step 2 of 3",
  "colors":{"blue":{"servers":[{"address":"127.0.0.1:5005","state":"up"}],
                    "rps":12.5,"requests":375,"error_rate":0.0,"p95_seconds":0.004},
            "green":{"servers":[{"address":"127.0.0.1:5006","state":"down"},{"address":"127.0.0.1:5007","state":"draining"}],
                     "rps":3.25,"requests":98,"error_rate":0.213,"p95_seconds":0.8125}}}]})j";

constexpr std::string_view health_example = R"j({"ok":true,"services":[{"name":"app","servers":[
  {"color":"blue","address":"127.0.0.1:5005","state":"up","consecutive_failures":0,
   "last_check":{"ok":true,"status":200,"latency_seconds":0.0012}},
  {"color":"green","address":"127.0.0.1:5006","state":"down","consecutive_failures":3,
   "last_check":{"ok":false,"status":503,"latency_seconds":0.001,"error":"status 503"}}]}]})j";

constexpr std::string_view history_example = R"j({"ok":true,"history":[{"time":"2026-11-24T21:30:00.123Z","service":"app",
  "command":"split","by":{"uid":0,"pid":4242},"reason":"manual",
  "before":{"blue":100.0,"green":0.0},"after":{"blue":50.0,"green":50.0}},
  {"time":"2026-11-24T21:31:02.000Z","service":"app","command":"rollback",
   "reason":"watchdog: rollback app green: error_rate 0.213 > 0.05 (n=412, window 30s)",
   "before":{"blue":50.0,"green":50.0},"after":{"blue":100.0,"green":0.0}}]})j";

TEST(BgctlRender, StatusExample) {
  EXPECT_EQ(render("status", answer(status_example)),
            "app: blue 70% / green 30% (phase canary, step 1, target green)\n"
            "  reason: canary: step 2 of 3\n"
            "  COLOR  RPS   REQUESTS  ERRORS  P95    SERVERS\n"
            "  blue   12.5  375       0.00%   4ms    127.0.0.1:5005 up\n"
            "  green  3.25  98        21.30%  812ms  127.0.0.1:5006 down, 127.0.0.1:5007 draining\n");
}

TEST(BgctlRender, StatusSeveralServicesAndOddWeights) {
  EXPECT_EQ(render_status(answer(R"j({"ok":true,"services":[
      {"name":"api","weights":{"blue":66.67,"green":33.33},"phase":"idle","step":0,"target":null,
       "colors":{"blue":{"servers":[],"rps":0,"requests":0,"error_rate":0,"p95_seconds":null}}},
      {"name":"web","weights":{"blue":0,"green":100},"phase":"promoted","target":"green"}]})j")),
            "api: blue 66.67% / green 33.33% (phase idle)\n"
            "  COLOR  RPS  REQUESTS  ERRORS  P95  SERVERS\n"
            "  blue   0    0         0.00%   -    (none)\n"
            "  green  -    -         -       -    -\n"
            "\n"
            "web: blue 0% / green 100% (phase promoted, target green)\n"
            "  COLOR  RPS  REQUESTS  ERRORS  P95  SERVERS\n"
            "  blue   -    -         -       -    -\n"
            "  green  -    -         -       -    -\n");
}

TEST(BgctlRender, StatusOfAGrpcServiceSaysHowManyCallsStreamedOutsideP95) {
  EXPECT_EQ(render_status(answer(R"j({"ok":true,"services":[
      {"name":"api","weights":{"blue":100,"green":0},"phase":"idle",
       "colors":{"blue":{"servers":[],"rps":2,"requests":10,"error_rate":0,"p95_seconds":0.003,"streaming_calls":4},
                 "green":{"servers":[],"rps":0,"requests":0,"error_rate":0,"p95_seconds":0,"streaming_calls":0}}}]})j")),
            "api: blue 100% / green 0% (phase idle)\n"
            "  COLOR  RPS  REQUESTS  ERRORS  P95  SERVERS\n"
            "  blue   2    10        0.00%   3ms  (none)\n"
            "  green  0    0         0.00%   0ms  (none)\n"
            "  blue streaming calls: 4 (not in p95)\n"
            "  green streaming calls: 0 (not in p95)\n");
}

TEST(BgctlRender, StatusWithFieldsMissing) {
  EXPECT_EQ(render_status(answer(R"j({"ok":true,"services":[{}]})j")),
            "-: blue - / green -\n"
            "  COLOR  RPS  REQUESTS  ERRORS  P95  SERVERS\n"
            "  blue   -    -         -       -    -\n"
            "  green  -    -         -       -    -\n");
  EXPECT_EQ(render_status(answer(R"j({"ok":true})j")), "no services\n");
  EXPECT_EQ(render_status(answer(R"j({"ok":true,"services":[]})j")), "no services\n");
  EXPECT_EQ(render_status(answer(R"j({"ok":true,"services":"x"})j")), "no services\n");
  // Wrong types print as missing rather than failing.
  EXPECT_EQ(render_status(answer(R"j({"ok":true,"services":[{"name":5,"weights":{"blue":"70","green":30},
      "colors":{"blue":{"servers":[{"state":"up"},7],"rps":"fast"}}}]})j")),
            "-: blue - / green 30%\n"
            "  COLOR  RPS  REQUESTS  ERRORS  P95  SERVERS\n"
            "  blue   -    -         -       -    - up, - -\n"
            "  green  -    -         -       -    -\n");
}

TEST(BgctlRender, LatencyUnits) {
  const auto row = [](std::string_view p95) {
    const std::string text = render_status(answer(std::string(R"j({"services":[{"name":"a","colors":{"blue":{"p95_seconds":)j") +
                                                  std::string(p95) + "}}}]}"));
    const auto at = text.find("  blue ");
    return text.substr(at, text.find('\n', at) - at);
  };
  EXPECT_NE(row("0.0005").find("0.5ms"), std::string::npos);
  EXPECT_NE(row("0.0123").find("12ms"), std::string::npos);
  EXPECT_NE(row("2.1").find("2100ms"), std::string::npos);
  EXPECT_NE(row("0").find("0ms"), std::string::npos);
}

TEST(BgctlRender, HealthExample) {
  EXPECT_EQ(render("health", answer(health_example)),
            "SERVICE  COLOR  ADDRESS         STATE  FAILURES  SUCCESSES  SINCE  LAST CHECK\n"
            "app      blue   127.0.0.1:5005  up     0         -          -      ok 200 1.2ms\n"
            "app      green  127.0.0.1:5006  down   3         -          -      failed 503 1ms: status 503\n");
}

TEST(BgctlRender, HealthShowsCountsAndTimeSinceTheLastChange) {
  EXPECT_EQ(render_health(answer(R"j({"ok":true,"services":[{"name":"app","servers":[
      {"color":"green","address":"10.0.0.1:80","state":"up","consecutive_failures":0,"consecutive_successes":7,
       "since_seconds":42.4,"last_check":{"ok":true,"status":200,"latency_seconds":0.002}},
      {"color":"blue","address":"10.0.0.2:80","state":"down","consecutive_failures":3,"consecutive_successes":0,
       "since_seconds":780,"last_check":null}]}]})j")),
            "SERVICE  COLOR  ADDRESS      STATE  FAILURES  SUCCESSES  SINCE  LAST CHECK\n"
            "app      green  10.0.0.1:80  up     0         7          42s    ok 200 2ms\n"
            "app      blue   10.0.0.2:80  down   3         0          13m    -\n");
}

TEST(BgctlRender, HealthWithFieldsMissing) {
  EXPECT_EQ(render_health(answer(R"j({"ok":true,"services":[{"name":"app","servers":[
      {"color":"green","address":"10.0.0.1:80","state":"down","last_check":{"ok":false,"error":"connection refused"}},
      {"address":"10.0.0.2:80","last_check":null},
      {}]},{"name":"web"}]})j")),
            "SERVICE  COLOR  ADDRESS      STATE  FAILURES  SUCCESSES  SINCE  LAST CHECK\n"
            "app      green  10.0.0.1:80  down   -         -          -      failed: connection refused\n"
            "app      -      10.0.0.2:80  -      -         -          -      -\n"
            "app      -      -            -      -         -          -      -\n");
  EXPECT_EQ(render_health(answer(R"j({"ok":true,"services":[]})j")), "no servers\n");
  EXPECT_EQ(render_health(answer(R"j({"ok":true})j")), "no servers\n");
}

TEST(BgctlRender, HistoryExample) {
  EXPECT_EQ(render("history", answer(history_example)),
            "TIME                      SERVICE  COMMAND   BY              WEIGHTS                                       REASON\n"
            "2026-11-24T21:30:00.123Z  app      split     uid 0 pid 4242  blue 100% / green 0% -> blue 50% / green 50%  manual\n"
            "2026-11-24T21:31:02.000Z  app      rollback  -               blue 50% / green 50% -> blue 100% / green 0%  "
            "watchdog: rollback app green: error_rate 0.213 > 0.05 (n=412, window 30s)\n");
}

// Issue 11: the command is the bare verb and its arguments come in "args"; the COMMAND column
// shows both, as an operator would type them.
TEST(BgctlRender, HistoryCommandWithArgs) {
  const auto out = render_history(answer(R"j({"ok":true,"history":[
    {"time":"t1","service":"app","command":"split","args":{"green":10},"by":{"uid":0,"pid":1},"reason":"manual",
     "before":{"blue":100.0,"green":0.0},"after":{"blue":90.0,"green":10.0}},
    {"time":"t2","service":"app","command":"split","args":{"green":12.5,"force":true},"by":{"uid":0,"pid":1},
     "reason":"manual","before":{"blue":90.0,"green":10.0},"after":{"blue":87.5,"green":12.5}},
    {"time":"t3","service":"app","command":"switch","args":{"color":"green"},"by":{"uid":0,"pid":1},"reason":"manual",
     "before":{"blue":87.5,"green":12.5},"after":{"blue":0.0,"green":100.0}},
    {"time":"t4","service":"app","command":"rollback","args":{},"by":{"uid":0,"pid":1},"reason":"manual",
     "before":{"blue":0.0,"green":100.0},"after":{"blue":100.0,"green":0.0}},
    {"time":"t5","service":"app","command":"canary","args":{"action":"start","target":"green","steps":[10,50,100],
     "interval_seconds":60},"by":{"uid":0,"pid":1},"reason":"manual",
     "before":{"blue":100.0,"green":0.0},"after":{"blue":90.0,"green":10.0}},
    {"time":"t6","service":"app","command":"canary","args":{"action":"advance"},"by":{"uid":0,"pid":2},
     "reason":"canary: step 2 of 3","before":{"blue":90.0,"green":10.0},"after":{"blue":50.0,"green":50.0}},
    {"time":"t7","service":"app","command":"server","args":{"action":"drain","address":"127.0.0.1:5006"},
     "by":{"uid":0,"pid":1},"reason":"manual","before":{"blue":50.0,"green":50.0},"after":{"blue":50.0,"green":50.0}}]})j"));
  const std::vector<std::string> want = {
      "split green 10%", "split green 12.5% --force", "switch green", "rollback",
      "canary start green 10%,50%,100% every 60s", "canary advance", "server drain 127.0.0.1:5006"};
  std::istringstream lines(out);
  std::string line;
  std::getline(lines, line);  // the header
  const std::size_t column = line.find("COMMAND");
  const std::size_t width = line.find("BY") - column;
  ASSERT_NE(column, std::string::npos) << out;
  for (const auto& command : want) {
    ASSERT_TRUE(std::getline(lines, line)) << out;
    EXPECT_EQ(line.substr(column, width), command + std::string(width - command.size(), ' ')) << out;
  }
}

TEST(BgctlRender, HistoryArgsOfAnyShape) {
  // A newer proxy's arguments still show, as key=JSON; control characters never reach the terminal.
  const auto out = render_history(answer(R"j({"ok":true,"history":[{"command":"release","args":{
      "version":"v2\u001b[31m","replicas":3,"steps":[1.5,"x"],"interval_seconds":0.25,"force":false,
      "green":"lots","labels":{"a":1}}}]})j"));
  EXPECT_NE(out.find("  release v2?[31m replicas=3 1.5%,- every 0.25s lots labels={\"a\":1}  "), std::string::npos)
      << out;
  EXPECT_EQ(out.find('\x1b'), std::string::npos) << out;
}

// A proxy from before issue 11 sends the arguments in the command text and no args.
TEST(BgctlRender, HistoryFromAnOlderProxy) {
  const auto out = render_history(answer(R"j({"ok":true,"history":[{"time":"t","service":"app",
      "command":"split green 10","by":{"uid":0,"pid":1},"reason":"manual"}]})j"));
  EXPECT_NE(out.find("app      split green 10  uid 0 pid 1"), std::string::npos) << out;
}

TEST(BgctlRender, HistoryWithFieldsMissing) {
  EXPECT_EQ(render_history(answer(R"j({"ok":true,"history":[{"command":"reload","by":{"uid":1000}}]})j")),
            "TIME  SERVICE  COMMAND  BY              WEIGHTS                               REASON\n"
            "-     -        reload   uid 1000 pid -  blue - / green - -> blue - / green -  -\n");
  EXPECT_EQ(render_history(answer(R"j({"ok":true,"history":[]})j")), "no history\n");
  EXPECT_EQ(render_history(answer(R"j({"ok":true})j")), "no history\n");
}

TEST(BgctlRender, ShadowComparison) {
  const auto text = render("shadow", answer(R"j({"ok":true,"services":[{"service":"app","percent":10,"color":"green",
    "since":"2026-12-04T10:00:00.000Z","requests":{"blue":{"compared":12,"dropped":0,"failed":0,"skipped":0},
    "green":{"compared":108,"dropped":2,"failed":1,"skipped":3}},"pairs":108,"mismatch_rate":0.25,
    "reported_fields":["$.version"],
    "fields":[{"field":"$.version","compared":108,"differing":27,"mismatch_rate":0.25,"noise_compared":12,
               "noise_differing":0,"noise_rate":0,"reported":true},
              {"field":"$.connection_id","compared":108,"differing":108,"mismatch_rate":1,"noise_compared":12,
               "noise_differing":12,"noise_rate":1,"reported":false}],
    "samples":[{"path":"/v?i=3","field":"$.version","primary":"\"1\"","shadow":"\"2\""}],
    "latency":{"pairs":108,"slower":80,"faster":28,"median_seconds":0.0004,"p95_seconds":-0.0012,"p_value":0.0001,
               "significant":true,"verdict":"green slower in 74 % of 108 pairs"}}]})j"));
  EXPECT_EQ(text,
            "app: mirroring 10% to green since 2026-12-04T10:00:00.000Z\n"
            "  to green:  compared 108  dropped 2  failed 1  skipped 3\n"
            "  to blue (noise floor):  compared 12  dropped 0  failed 0  skipped 0\n"
            "  mismatch rate 25.00% over 108 pairs: $.version\n"
            "  FIELD            COMPARED  DIFFERING  RATE     NOISE    REPORTED\n"
            "  $.version        108       27         25.00%   0.00%    yes\n"
            "  $.connection_id  108       108        100.00%  100.00%  no\n"
            "  samples (primary | shadow):\n"
            "    /v?i=3  $.version  \"1\" | \"2\"\n"
            "  latency: green slower in 74 % of 108 pairs; shadow - primary median +0.4ms, p95 -1.2ms\n");
}

TEST(BgctlRender, StatusCarriesTheShadowSummary) {
  const auto text = render("status", answer(R"j({"ok":true,"services":[{"name":"app","weights":{"blue":100,"green":0},
    "phase":"idle","shadow":{"percent":20,"color":"green","pairs":108,"mismatch_rate":1,
    "reported_fields":["$.app_version"],"latency":"green faster in 68 % of 108 pairs"}}]})j"));
  EXPECT_NE(text.find("\n  shadow: 20% to green, mismatch 100.00% over 108 pairs ($.app_version); green faster in 68 % "
                      "of 108 pairs\n"),
            std::string::npos)
      << text;
  const auto off = render("status", answer(R"j({"ok":true,"services":[{"name":"app","shadow":{"percent":0,"color":null}}]})j"));
  EXPECT_EQ(off.find("shadow"), std::string::npos) << off;
}

TEST(BgctlRender, ShadowOffAndFieldsMissing) {
  EXPECT_EQ(render("shadow", answer(R"j({"ok":true,"services":[{"service":"app","percent":0,"color":null}]})j")),
            "app: no shadow traffic (shadow.percent is 0)\n");
  EXPECT_EQ(render("shadow", answer(R"j({"ok":true,"services":[{"service":"app","color":"blue"}]})j")),
            "app: mirroring - to blue since -\n"
            "  to blue:  compared -  dropped -  failed -  skipped -\n"
            "  to green (noise floor):  compared -  dropped -  failed -  skipped -\n"
            "  mismatch rate - over - pairs (no field differs above its noise)\n"
            "  latency: -; shadow - primary median -, p95 -\n");
  EXPECT_EQ(render("shadow", answer(R"j({"ok":true,"services":[]})j")), "no services\n");
  // A difference that rounds to nothing has no sign.
  EXPECT_NE(render("shadow", answer(R"j({"ok":true,"services":[{"service":"app","color":"green",
    "latency":{"median_seconds":-0.00001,"p95_seconds":0.00001}}]})j")).find("median 0ms, p95 0ms"), std::string::npos);
}

TEST(BgctlRender, ChangeSummary) {
  EXPECT_EQ(render("split", answer(R"j({"ok":true,"state":{"name":"app","weights":{"blue":50.0,"green":50.0},
      "phase":"canary","step":0,"target":"green"}})j")),
            "app: blue 50% / green 50% (phase canary, step 0, target green)\n");
  EXPECT_EQ(render("switch", answer(R"j({"ok":true,"state":{"name":"app","weights":{"blue":0,"green":100},"phase":"idle"}})j")),
            "app: blue 0% / green 100% (phase idle)\n");
  EXPECT_EQ(render("reload", answer(R"j({"ok":true,"state":{"services":[{"name":"api","weights":{"blue":100,"green":0}},
      {"name":"web","weights":{"blue":90,"green":10}}]}})j")),
            "api: blue 100% / green 0%\nweb: blue 90% / green 10%\n");
  EXPECT_EQ(render("rollback", answer(R"j({"ok":true,"state":[{"name":"a"}]})j")), "a: blue - / green -\n");
  EXPECT_EQ(render("rollback", answer(R"j({"ok":true,"state":[{"name":"a"}],"cut":{"color":"green","exchanges":3}})j")),
            "a: blue - / green -\ncut 3 exchanges in flight to green\n");
  EXPECT_EQ(render("rollback", answer(R"j({"ok":true,"state":[{"name":"a"}],"cut":{"color":null,"exchanges":0}})j")),
            "a: blue - / green -\nnothing cut: both colors keep traffic\n");
  EXPECT_EQ(render("reload", answer(R"j({"ok":true})j")), "ok\n");
  EXPECT_EQ(render("canary", answer(R"j({"ok":true,"message":"canary started"})j")), "canary started\n");
  EXPECT_EQ(render("server", answer(R"j({"ok":true,"state":"weird"})j")), "ok\n");
}

TEST(BgctlRender, ControlCharactersFromTheProxyAreNeutralised) {
  EXPECT_EQ(render("reload", answer(R"j({"ok":true,"state":{"name":"a\u001b[2Jb"}})j")), "a?[2Jb: blue - / green -\n");
}

// ----------------------------------------------------------------------- status with a fleet

constexpr std::string_view one_service = R"j({"name":"app","weights":{"blue":100.0,"green":0.0},"phase":"idle",
  "step":0,"target":null,"revision":42,
  "colors":{"blue":{"servers":[{"address":"127.0.0.1:5005","state":"up"}]},
            "green":{"servers":[{"address":"127.0.0.1:5006","state":"up"}]}}})j";

constexpr std::string_view service_text =
    "app: blue 100% / green 0% (phase idle)\n"
    "  COLOR  RPS  REQUESTS  ERRORS  P95  SERVERS\n"
    "  blue   -    -         -       -    127.0.0.1:5005 up\n"
    "  green  -    -         -       -    127.0.0.1:5006 up\n";

TEST(BgctlRenderFleet, StatusShowsTheFleetAndOneRowPerMember) {
  const std::string text = render_status(answer(
      std::string(R"j({"ok":true,"services":[)j") + std::string(one_service) +
      R"j(],"fleet":{"connected":true,"instance":"a","revision":42,"members":[
        {"instance":"a","address":"127.0.0.1:9901","revision":42,"connected":true},
        {"instance":"b","address":"127.0.0.1:9902","revision":42,"connected":true},
        {"instance":"charlie","address":"10.0.0.3:19903","revision":7,"connected":false}]}})j"));
  EXPECT_EQ(text, std::string(service_text) +
                      "\n"
                      "fleet: connected to etcd, routing by revision 42, 3 members\n"
                      "  a        127.0.0.1:9901  revision 42  connected\n"
                      "  b        127.0.0.1:9902  revision 42  connected\n"
                      "  charlie  10.0.0.3:19903  revision 7   not connected\n");
}

TEST(BgctlRenderFleet, TheContractsLine) {
  const std::string text = render("status", answer(
      std::string(R"j({"ok":true,"services":[)j") + std::string(one_service) +
      R"j(],"fleet":{"connected":true,"instance":"a","revision":42,"members":[
        {"instance":"a","address":"127.0.0.1:9001","revision":42,"connected":true}]}})j"));
  EXPECT_NE(text.find("\nfleet: connected to etcd, routing by revision 42, 1 member\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\n  a  127.0.0.1:9001  revision 42  connected\n"), std::string::npos) << text;
}

TEST(BgctlRenderFleet, DisconnectedAndWithoutMembers) {
  const std::string text = render_status(answer(std::string(R"j({"ok":true,"services":[)j") +
                                                std::string(one_service) +
                                                R"j(],"fleet":{"connected":false,"instance":"a","revision":0,"members":[]}})j"));
  EXPECT_EQ(text, std::string(service_text) + "\nfleet: NOT connected to etcd, routing by revision 0, 0 members\n");
}

TEST(BgctlRenderFleet, FieldsMissingPrintAsDashes) {
  const std::string text = render_status(answer(std::string(R"j({"ok":true,"services":[)j") +
                                                std::string(one_service) + R"j(],"fleet":{"members":[{}]}})j"));
  EXPECT_NE(text.find("\nfleet: NOT connected to etcd, routing by revision -, 1 member\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\n  -  -  revision -  not connected\n"), std::string::npos) << text;
}

TEST(BgctlRenderFleet, WithoutAFleetNothingOfIt) {
  const std::string text =
      render_status(answer(std::string(R"j({"ok":true,"services":[)j") + std::string(one_service) + "]}"));
  EXPECT_EQ(text, service_text);
  EXPECT_EQ(text.find("fleet"), std::string::npos);
  EXPECT_EQ(text.find("revision"), std::string::npos);
}

TEST(BgctlRenderFleet, ControlCharactersInMemberNamesAreNeutralised) {
  const std::string text = render_status(answer(
      std::string(R"j({"ok":true,"services":[)j") + std::string(one_service) +
      R"j(],"fleet":{"connected":true,"revision":1,"members":[
        {"instance":"a\u001b[2J","address":"x\ny","revision":1,"connected":true}]}})j"));
  EXPECT_EQ(text.find('\x1b'), std::string::npos) << text;
  EXPECT_NE(text.find("a?[2J"), std::string::npos) << text;
  EXPECT_NE(text.find("x?y"), std::string::npos) << text;
}

}  // namespace
}  // namespace bgproxy::bgctl
