#include <google/protobuf/util/json_util.h>

#include "client/report/analyze_report.h"

namespace kvcomp::report {

std::string AnalyzeJson(const kvcomp::v1::AnalyzeResponse& response) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string out;
  // Serialising a well-formed message to JSON cannot fail.
  (void)google::protobuf::util::MessageToJsonString(response, &out, options);
  return out;
}

}  // namespace kvcomp::report
