// Golden data-driven tests: every tests/golden/*.test file is a list of
// dumps, requests and the exact expected response (or error). Adding a case
// needs no C++. Format:
//
//   # comment
//   now: 2016-02-09T00:00:00Z        clock for date math (default: the epoch)
//   max_result_window: 10000         store option
//   dump: data/it_ops_new_kpi.ndjson load a file (path from the repo root)
//   dump: inline                     load the lines up to a line "end"
//   request: body JOB [pretty] [human]   a JSON body follows (to "expect:")
//   request: params JOB              one name=value per line (to "expect:")
//   expect:                          the exact response or error JSON, up
//                                    to the next directive, comment or end
//   ---                              end of a case: a fresh store follows
//
// To fill in or refresh expectations after writing requests, run
//   GOLDEN_UPDATE=1 bazel run //tests:golden_test
// which rewrites the files in the source tree with the actual outputs;
// review the diff before committing it.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "engine/dates.h"
#include "engine/loader.h"
#include "engine/request.h"
#include "engine/response.h"
#include "engine/store.h"
#include "gtest/gtest.h"

namespace clout {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::vector<std::string> GoldenFiles() {
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator("tests/golden")) {
    if (entry.path().extension() == ".test") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string TrimBlock(const std::vector<std::string>& lines) {
  std::string text;
  for (const std::string& line : lines) {
    if (!text.empty()) text += "\n";
    text += line;
  }
  return std::string(absl::StripAsciiWhitespace(text));
}

class GoldenTest : public testing::TestWithParam<std::string> {};

TEST_P(GoldenTest, ResponsesMatch) {
  const std::string path = GetParam();
  std::vector<std::string> lines =
      absl::StrSplit(ReadFile(path), '\n');
  int64_t now = 0;
  StoreOptions options;
  std::unique_ptr<InfluencerStore> store;
  auto ensure_store = [&] {
    if (!store) {
      options.now_millis = [&now] { return now; };
      store = std::make_unique<InfluencerStore>(options);
    }
  };
  int requests = 0;
  // For GOLDEN_UPDATE: each expect block's line range and actual output.
  struct Replacement {
    size_t begin, end;
    std::string text;
  };
  std::vector<Replacement> replacements;
  size_t i = 0;
  while (i < lines.size()) {
    std::string line_text = lines[i];
    absl::StripTrailingAsciiWhitespace(&line_text);
    absl::string_view line = line_text;
    const size_t line_no = i + 1;
    ++i;
    if (line.empty() || line[0] == '#') continue;
    if (absl::ConsumePrefix(&line, "now: ")) {
      absl::StatusOr<int64_t> t = ParseIsoDate(line);
      ASSERT_TRUE(t.ok()) << path << ":" << line_no << ": bad now";
      now = *t;
    } else if (absl::ConsumePrefix(&line, "max_result_window: ")) {
      ASSERT_FALSE(store) << path << ":" << line_no
                          << ": options must come before the first dump";
      options.max_result_window = std::stoll(std::string(line));
    } else if (absl::ConsumePrefix(&line, "dump: ")) {
      ensure_store();
      absl::StatusOr<LoadReport> report;
      if (line == "inline") {
        std::string dump;
        while (i < lines.size() && lines[i] != "end") dump += lines[i++] + "\n";
        ASSERT_LT(i, lines.size()) << path << ":" << line_no << ": no end";
        ++i;
        report = LoadString(*store, dump);
      } else {
        report = LoadFile(*store, std::string(line));
      }
      ASSERT_TRUE(report.ok()) << path << ":" << line_no << ": "
                               << report.status();
    } else if (absl::ConsumePrefix(&line, "request: ")) {
      ensure_store();
      std::vector<std::string> words = absl::StrSplit(line, ' ');
      ASSERT_GE(words.size(), 2u) << path << ":" << line_no;
      const bool body_mode = words[0] == "body";
      ASSERT_TRUE(body_mode || words[0] == "params") << path << ":" << line_no;
      OutputOptions output;
      for (size_t w = 2; w < words.size(); ++w) {
        if (words[w] == "pretty") output.pretty = true;
        if (words[w] == "human") output.human = true;
      }
      std::vector<std::string> request_lines;
      while (i < lines.size() && lines[i] != "expect:") {
        request_lines.push_back(lines[i++]);
      }
      ASSERT_LT(i, lines.size()) << path << ":" << line_no << ": no expect:";
      ++i;
      std::vector<std::string> expect_lines;
      const size_t expect_begin = i;
      while (i < lines.size() && !absl::StartsWith(lines[i], "request: ") &&
             !absl::StartsWith(lines[i], "dump: ") &&
             !absl::StartsWith(lines[i], "now: ") &&
             !absl::StartsWith(lines[i], "#") && lines[i] != "---") {
        expect_lines.push_back(lines[i++]);
      }
      absl::StatusOr<InfluencersRequest> request;
      if (body_mode) {
        request = ParseBodyRequest(words[1], TrimBlock(request_lines));
      } else {
        std::vector<RequestParam> params;
        for (const std::string& p : request_lines) {
          if (p.empty() || p[0] == '#') continue;
          size_t eq = p.find('=');
          if (eq == std::string::npos) {
            params.emplace_back(p, "");
          } else {
            params.emplace_back(p.substr(0, eq), p.substr(eq + 1));
          }
        }
        request = ParseParamRequest(words[1], params, &output);
      }
      std::string actual;
      if (!request.ok()) {
        actual = ErrorJson(request.status(), output.pretty);
      } else {
        absl::StatusOr<InfluencersPage> page = store->GetInfluencers(*request);
        actual = page.ok() ? InfluencersJson(*page, output)
                           : ErrorJson(page.status(), output.pretty);
      }
      size_t expect_end = i;
      // Keep the blank lines that separate this case from the next.
      while (expect_end > expect_begin && lines[expect_end - 1].empty()) {
        --expect_end;
      }
      replacements.push_back({expect_begin, expect_end, actual});
      EXPECT_EQ(actual, TrimBlock(expect_lines))
          << path << ":" << line_no << ": response differs; actual:\n"
          << actual;
      ++requests;
    } else if (line == "---") {
      // Separator between cases; starts a fresh store.
      store.reset();
      options = StoreOptions();
      now = 0;
    } else {
      FAIL() << path << ":" << line_no << ": unknown directive: " << line;
    }
  }
  EXPECT_GT(requests, 0) << path << " has no requests";

  const char* update = std::getenv("GOLDEN_UPDATE");
  const char* workspace = std::getenv("BUILD_WORKSPACE_DIRECTORY");
  if (update != nullptr && *update != '\0' && workspace != nullptr) {
    std::string out;
    size_t l = 0;
    size_t next = 0;
    while (l < lines.size() || next < replacements.size()) {
      if (next < replacements.size() && l == replacements[next].begin) {
        out += replacements[next].text + "\n";
        l = replacements[next].end;
        ++next;
        continue;
      }
      if (l >= lines.size()) break;
      out += lines[l];
      if (l + 1 < lines.size()) out += "\n";
      ++l;
    }
    std::ofstream(std::string(workspace) + "/" + path, std::ios::binary) << out;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Golden, GoldenTest, testing::ValuesIn(GoldenFiles()),
    [](const testing::TestParamInfo<std::string>& info) {
      std::string name = std::filesystem::path(info.param).stem();
      for (char& c : name) {
        if (!isalnum(static_cast<unsigned char>(c))) c = '_';
      }
      return name;
    });

}  // namespace
}  // namespace clout
