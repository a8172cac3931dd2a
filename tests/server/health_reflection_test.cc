// grpc.health.v1 answers SERVING, and server reflection lists the service.
#include <algorithm>

#include <gtest/gtest.h>

#include "health_client.grpc.pb.h"
#include "reflection_client.grpc.pb.h"
#include "tests/server/server_fixture.h"

namespace kvcomp::testing {
namespace {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

class HealthReflectionTest : public ServerTest {};

TEST_F(HealthReflectionTest, HealthIsServingForServerAndService) {
  auto health = grpc::health::v1::Health::NewStub(UnlimitedChannel(server_->address()));
  for (const char* service : {"", "kvcomp.v1.KVCompressor"}) {
    SCOPED_TRACE(service);
    HealthCheckRequest request;
    request.set_service(service);
    HealthCheckResponse response;
    grpc::ClientContext context;
    grpc::Status s = health->Check(&context, request, &response);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);
  }
}

TEST_F(HealthReflectionTest, HealthOfUnknownServiceIsNotFound) {
  auto health = grpc::health::v1::Health::NewStub(UnlimitedChannel(server_->address()));
  HealthCheckRequest request;
  request.set_service("no.such.Service");
  HealthCheckResponse response;
  grpc::ClientContext context;
  EXPECT_EQ(health->Check(&context, request, &response).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(HealthReflectionTest, ReflectionListsTheService) {
  namespace refl = grpc::reflection::v1alpha;
  auto reflection = refl::ServerReflection::NewStub(UnlimitedChannel(server_->address()));
  grpc::ClientContext context;
  auto stream = reflection->ServerReflectionInfo(&context);
  refl::ServerReflectionRequest request;
  request.set_list_services("");
  ASSERT_TRUE(stream->Write(request));
  refl::ServerReflectionResponse response;
  ASSERT_TRUE(stream->Read(&response));
  stream->WritesDone();
  grpc::Status s = stream->Finish();
  ASSERT_TRUE(s.ok()) << s.error_message();

  ASSERT_TRUE(response.has_list_services_response())
      << "error response: " << response.error_response().error_message();
  std::vector<std::string> names;
  for (const auto& service : response.list_services_response().service()) {
    names.push_back(service.name());
  }
  EXPECT_NE(std::find(names.begin(), names.end(), "kvcomp.v1.KVCompressor"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "grpc.health.v1.Health"), names.end());
}

}  // namespace
}  // namespace kvcomp::testing
