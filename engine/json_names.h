// Names of simdjson value types as Clout's errors word them. Pure and
// thread-safe; header-only.
#ifndef CLOUT_ENGINE_JSON_NAMES_H_
#define CLOUT_ENGINE_JSON_NAMES_H_

#include "simdjson.h"

namespace clout {

// "an array", "an object", "a number", "a string", "a boolean" or "null":
// what a reason says was found.
inline const char* JsonTypeName(simdjson::ondemand::json_type type) {
  using T = simdjson::ondemand::json_type;
  switch (type) {
    case T::array: return "an array";
    case T::object: return "an object";
    case T::number: return "a number";
    case T::string: return "a string";
    case T::boolean: return "a boolean";
    case T::null: return "null";
  }
  return "an unknown value";
}

// Jackson's name of the token a value starts with ("START_ARRAY",
// "VALUE_NUMBER", ...), as Elasticsearch's parsers word their errors.
inline const char* TokenName(simdjson::ondemand::json_type type) {
  using T = simdjson::ondemand::json_type;
  switch (type) {
    case T::array: return "START_ARRAY";
    case T::object: return "START_OBJECT";
    case T::number: return "VALUE_NUMBER";
    case T::string: return "VALUE_STRING";
    case T::boolean: return "VALUE_BOOLEAN";
    case T::null: return "VALUE_NULL";
  }
  return "VALUE_EMBEDDED_OBJECT";
}

}  // namespace clout

#endif  // CLOUT_ENGINE_JSON_NAMES_H_
