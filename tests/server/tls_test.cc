// TLS and mutual TLS through the flags, with certificates made by openssl at test time: a CA,
// a server certificate for 127.0.0.1 (subjectAltName IP), a client certificate, and a client
// certificate from a second, wrong CA.
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/server/server_fixture.h"

namespace kvcomp::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;

std::string Slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs `command` through the shell; true when it exits 0.
bool RunShell(const std::string& command) {
  const int status = std::system(command.c_str());
  return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/kvcomp-tls-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = new fs::path(tmpl);
    const std::string d = dir_->string();
    const std::string key = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    auto ca = [&](const std::string& name) {
      return "openssl req -x509 -days 2" + key + " -keyout " + d + "/" + name + ".key -out " + d +
             "/" + name + ".pem -subj /CN=" + name +
             " -addext basicConstraints=critical,CA:TRUE"
             " -addext keyUsage=critical,keyCertSign,cRLSign";
    };
    auto leaf = [&](const std::string& name, const std::string& signer, const std::string& ext) {
      return "openssl req" + key + " -keyout " + d + "/" + name + ".key -out " + d + "/" + name +
             ".csr -subj /CN=" + name + " && printf '" + ext + "' > " + d + "/" + name +
             ".ext && openssl x509 -req -days 2 -in " + d + "/" + name + ".csr -CA " + d + "/" +
             signer + ".pem -CAkey " + d + "/" + signer + ".key -CAcreateserial -out " + d + "/" +
             name + ".pem -extfile " + d + "/" + name + ".ext";
    };
    const std::string quiet = " > " + d + "/openssl.log 2>&1";
    ASSERT_TRUE(RunShell(
        "(" + ca("ca") + " && " + ca("wrong-ca") + " && " +
        leaf("server", "ca", "subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n") +
        " && " + leaf("client", "ca", "extendedKeyUsage=clientAuth\\n") + " && " +
        leaf("stranger", "wrong-ca", "extendedKeyUsage=clientAuth\\n") + ")" + quiet))
        << Slurp(*dir_ / "openssl.log");
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }

  static std::string File(const std::string& name) { return (*dir_ / name).string(); }

  // A TLS channel trusting our CA, presenting `client` ("client", "stranger") unless empty.
  static std::shared_ptr<grpc::Channel> TlsChannel(const std::string& address,
                                                   const std::string& client) {
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = Slurp(File("ca.pem"));
    if (!client.empty()) {
      options.pem_private_key = Slurp(File(client + ".key"));
      options.pem_cert_chain = Slurp(File(client + ".pem"));
    }
    return grpc::CreateChannel(address, grpc::SslCredentials(options));
  }

  static grpc::Status Probe(const std::shared_ptr<grpc::Channel>& channel) {
    auto stub = v1::KVCompressor::NewStub(channel);
    v1::CompressRequest request;
    request.set_codec("zstd(3)");
    *request.add_tensors() = SyntheticTensor("probe", 0, v1::TENSOR_KIND_V, 2, 32);
    v1::CompressResponse response;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return stub->Compress(&context, request, &response);
  }

  std::vector<std::string> TlsFlags(bool mutual) {
    std::vector<std::string> flags{"--tls-cert", File("server.pem"), "--tls-key",
                                   File("server.key")};
    if (mutual) {
      flags.insert(flags.end(), {"--tls-ca", File("ca.pem"), "--tls-require-client-cert"});
    }
    return flags;
  }

  static fs::path* dir_;
};

fs::path* TlsTest::dir_ = nullptr;

TEST_F(TlsTest, TlsServesTlsClientsAndRefusesPlaintext) {
  auto server = ServerProcess::Start(TlsFlags(/*mutual=*/false));
  ASSERT_TRUE(server.ok()) << server.status();
  grpc::Status s = Probe(TlsChannel((*server)->address(), ""));
  EXPECT_TRUE(s.ok()) << s.error_code() << ": " << s.error_message();
  ExpectServesGoodRequest(*v1::KVCompressor::NewStub(TlsChannel((*server)->address(), "")));
  EXPECT_EQ(Probe(UnlimitedChannel((*server)->address())).error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TlsTest, MutualTlsServesAClientWithAGoodCertificate) {
  auto server = ServerProcess::Start(TlsFlags(/*mutual=*/true));
  ASSERT_TRUE(server.ok()) << server.status();
  grpc::Status s = Probe(TlsChannel((*server)->address(), "client"));
  EXPECT_TRUE(s.ok()) << s.error_code() << ": " << s.error_message();
}

TEST_F(TlsTest, MutualTlsRefusesAClientWithoutACertificate) {
  auto server = ServerProcess::Start(TlsFlags(/*mutual=*/true));
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ(Probe(TlsChannel((*server)->address(), "")).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  // The same server still serves a good client.
  EXPECT_TRUE(Probe(TlsChannel((*server)->address(), "client")).ok());
}

TEST_F(TlsTest, MutualTlsRefusesAClientSignedByTheWrongCa) {
  auto server = ServerProcess::Start(TlsFlags(/*mutual=*/true));
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ(Probe(TlsChannel((*server)->address(), "stranger")).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(Probe(TlsChannel((*server)->address(), "client")).ok());
}

// Issue 25, finding 10: --tls-ca without --tls-require-client-cert used to check nothing: a
// certificate from another CA was accepted. A presented certificate is now verified; a client
// without one is still served (the certificate is not required).
TEST_F(TlsTest, TlsCaVerifiesAPresentedCertificateEvenWhenNotRequired) {
  std::vector<std::string> flags = TlsFlags(/*mutual=*/false);
  flags.insert(flags.end(), {"--tls-ca", File("ca.pem")});
  auto server = ServerProcess::Start(flags);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ(Probe(TlsChannel((*server)->address(), "stranger")).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(Probe(TlsChannel((*server)->address(), "client")).ok());
  EXPECT_TRUE(Probe(TlsChannel((*server)->address(), "")).ok());
}

// Runs the server binary with `args` and returns its exit code and output.
int RunServer(const std::string& args, std::string* out) {
  return RunCommand(ServerProcess::BinaryPath() + " " + args, out);
}

TEST_F(TlsTest, BadTlsFlagCombinationsFailToStart) {
  std::string out;
  EXPECT_EQ(RunServer("--listen 127.0.0.1:0 --tls-cert " + File("server.pem"), &out), 2);
  EXPECT_THAT(out, HasSubstr("--tls-cert and --tls-key go together"));
  out.clear();
  EXPECT_EQ(RunServer("--listen 127.0.0.1:0 --tls-cert " + File("server.pem") + " --tls-key " +
                          File("server.key") + " --tls-require-client-cert",
                      &out),
            2);
  EXPECT_THAT(out, HasSubstr("needs --tls-ca"));
}

// Plaintext only on loopback: a non-loopback address without TLS is refused before binding
// (10.255.255.1 is not an address of this machine either way).
TEST_F(TlsTest, PlaintextOffLoopbackIsRefused) {
  std::string out;
  EXPECT_EQ(RunServer("--listen 10.255.255.1:0 --metrics 127.0.0.1:0", &out), 2);
  EXPECT_THAT(out, HasSubstr("plaintext is served on loopback or a Unix socket only"));
}

// --allow-plaintext lifts that refusal: the flags pass and the server gets as far as binding,
// which fails here only because 10.255.255.1 is not this machine's.
TEST_F(TlsTest, AllowPlaintextGetsPastTheLoopbackCheck) {
  std::string out;
  EXPECT_EQ(RunServer("--listen 10.255.255.1:0 --metrics 127.0.0.1:0 --allow-plaintext", &out), 1);
  EXPECT_THAT(out, Not(HasSubstr("plaintext is served")));
  EXPECT_THAT(out, HasSubstr("allow_plaintext=true"));
  EXPECT_THAT(out, HasSubstr("cannot serve gRPC on 10.255.255.1:0"));
}

}  // namespace
}  // namespace kvcomp::testing
