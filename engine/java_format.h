// Number and string formatting byte-compatible with Elasticsearch's JSON
// output (Java's Double.toString, Jackson's string escaping).
//
// Pure and thread-safe.
#ifndef CLOUT_ENGINE_JAVA_FORMAT_H_
#define CLOUT_ENGINE_JAVA_FORMAT_H_

#include <string>

#include "absl/strings/string_view.h"

namespace clout {

// Appends `value` as Java's Double.toString (JDK 19+) writes it: the
// shortest decimal that rounds back to `value` (when that is one digit long,
// the closest one- or two-digit decimal), in plain notation with at least
// one fractional digit when 1e-3 <= |value| < 1e7 ("80.0", "94.1386",
// "0.001"), otherwise as d.dddE<n> ("1.11612E-4", "1.0E7", "4.9E-324").
// Zero is "0.0" or "-0.0"; NaN and infinities are "NaN", "Infinity",
// "-Infinity" (not valid JSON; the loader never stores them).
void AppendJavaDouble(double value, std::string* out);

// Returns AppendJavaDouble's text.
std::string JavaDoubleToString(double value);

// Appends `text` as a JSON string literal (with the quotes) as Jackson
// escapes it: '"' and '\\' backslash-escaped; \b \t \n \f \r short forms;
// other control characters below 0x20 as \u00XX (upper-case hex); everything else, non-ASCII
// UTF-8 included, as is. Invalid UTF-8 (possible only in text quoted from
// raw input, such as an error message) becomes U+FFFD, so the output is
// always valid JSON.
void AppendJsonString(absl::string_view text, std::string* out);

// Returns `text` with every invalid UTF-8 sequence (a bad byte, an overlong
// form, a surrogate, a value past U+10FFFF) replaced by U+FFFD, as Java
// does when it decodes bytes into a String.
std::string ValidUtf8(absl::string_view text);

}  // namespace clout

#endif  // CLOUT_ENGINE_JAVA_FORMAT_H_
