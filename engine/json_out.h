// JsonOut: writes JSON compactly or in Elasticsearch's pretty layout
// (Jackson's DefaultPrettyPrinter as Elasticsearch configures it: two spaces
// per level, `"key" : value`, an empty container as `{ }` / `[ ]`), with
// strings and doubles as Elasticsearch's Java writes them (java_format.h).
//
// Not thread-safe: one writer per output string.
#ifndef CLOUT_ENGINE_JSON_OUT_H_
#define CLOUT_ENGINE_JSON_OUT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "engine/java_format.h"

namespace clout {

// Appends to `*out`. The caller nests calls correctly (a Key before every
// value of an object, none in an array); the writer does not check.
class JsonOut {
 public:
  JsonOut(std::string* out, bool pretty) : out_(out), pretty_(pretty) {}

  void BeginObject() { Open('{'); }
  void EndObject() { Close('}'); }
  void BeginArray() { Open('['); }
  void EndArray() { Close(']'); }

  // Starts a member of the current object; the value follows.
  void Key(absl::string_view key) {
    Separate();
    AppendJsonString(key, out_);
    out_->append(pretty_ ? " : " : ":");
    after_key_ = true;
  }
  void String(absl::string_view s) {
    Value();
    AppendJsonString(s, out_);
  }
  void Double(double d) {
    Value();
    AppendJavaDouble(d, out_);
  }
  void Long(int64_t v) {
    Value();
    absl::StrAppend(out_, v);
  }
  void Bool(bool b) {
    Value();
    out_->append(b ? "true" : "false");
  }
  // A value given as JSON text (a number, literal or string token, or a
  // whole compact container when not pretty), copied as it is.
  void Raw(absl::string_view json) {
    Value();
    out_->append(json.data(), json.size());
  }
  // A key given as a JSON string token with its quotes and escapes.
  void RawKey(absl::string_view json_string) {
    Separate();
    out_->append(json_string.data(), json_string.size());
    out_->append(pretty_ ? " : " : ":");
    after_key_ = true;
  }

 private:
  // Before a value: in an array it needs a separator, after a key not.
  void Value() {
    if (after_key_) {
      after_key_ = false;
    } else {
      Separate();
    }
  }
  void Separate() {
    if (!first_.empty()) {
      if (!first_.back()) out_->push_back(',');
      first_.back() = false;
      Newline();
    }
  }
  void Newline() {
    if (!pretty_) return;
    out_->push_back('\n');
    out_->append(2 * first_.size(), ' ');
  }
  void Open(char c) {
    Value();
    out_->push_back(c);
    first_.push_back(true);
  }
  void Close(char c) {
    bool empty = first_.back();
    first_.pop_back();
    if (pretty_) {
      if (empty) {
        out_->push_back(' ');
      } else {
        Newline();
      }
    }
    out_->push_back(c);
  }

  std::string* out_;
  bool pretty_;
  bool after_key_ = false;
  std::vector<bool> first_;  // per open container: no member written yet
};

}  // namespace clout

#endif  // CLOUT_ENGINE_JSON_OUT_H_
