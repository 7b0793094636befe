#include "server/server.h"

#include <fmt/format.h>
#include <sys/socket.h>

#include <cctype>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>

#include "server/api_error.h"
#include "server/server_context.h"

namespace flashrt::server {

using nlohmann::json;

namespace {

// Metric label for a request path: one of the routes the server has, ids collapsed to {id}, and
// "other" for anything else. The label never carries text from the request, so the label set is
// bounded and /metrics cannot be forged through a path.
std::string route_label(const httplib::Request& req) {
  static const char* const kRoutes[] = {
      "/health",
      "/metrics",
      "/v1/models",
      "/v1/models/{id}",
      "/v1/completions",
      "/v1/chat/completions",
      "/v1/sessions",
      "/v1/sessions/{id}",
      "/v1/sessions/{id}/append",
      "/v1/sessions/{id}/generate",
      "/v1/sessions/{id}/interrupt",
      "/v1/sessions/{id}/snapshot",
      "/v1/sessions/{id}/restore",
      "/v1/sessions/{id}/fork",
      "/v1/capsules",
      "/v1/capsules/{id}",
  };
  auto matches = [&p = req.path](std::string_view route) {
    size_t i = 0;  // position in the path
    for (size_t r = 0; r < route.size();) {
      if (route.substr(r, 4) == "{id}") {
        const size_t end = p.find('/', i);
        const size_t stop = end == std::string::npos ? p.size() : end;
        if (stop == i) return false;  // an empty id
        i = stop;
        r += 4;
      } else {
        if (i >= p.size() || p[i] != route[r]) return false;
        ++i;
        ++r;
      }
    }
    return i == p.size();
  };
  for (const char* r : kRoutes)
    if (matches(r)) return r;
  return "other";
}

// The framing of a request, checked before its body is read (httplib would otherwise wait for a
// body that never comes, or stop answering). Returns an error to send, or nothing. Fixes up what
// is harmless: a POST without Content-Length has an empty body, and a form content type (curl -d)
// is not parsed as a form: every route reads its body as JSON (or capsule bytes) whatever the
// type says.
// Marks a request whose connection ends after its answer (see check_framing).
constexpr const char* kCloseAfter = "flashrt-close-after";

// RFC 9110 5.6.2: a header name is a token.
bool is_token(const std::string& name) {
  if (name.empty()) return false;
  for (unsigned char c : name)
    if (!(std::isalnum(c) || std::strchr("!#$%&'*+-.^_`|~", c))) return false;
  return true;
}

std::optional<ApiError> check_framing(httplib::Request& req, size_t max_body) {
  std::vector<std::string> lengths;
  for (auto [it, end] = req.headers.equal_range("Content-Length"); it != end; ++it)
    lengths.push_back(it->second);
  auto bad = [](const std::string& why) {
    return ApiError(400, "malformed HTTP request: " + why, "", "bad_http_request");
  };
  // "Content-Length : 5", a folded " Content-Length: 5": httplib keeps such names as they are,
  // so the framing below would not see them while a proxy in front might (request smuggling).
  for (const auto& [name, value] : req.headers)
    if (!is_token(name))
      return bad(
          fmt::format("header name '{}' is not a token (whitespace before the colon, or a "
                      "folded line)",
                      name.substr(0, 64)));
  // httplib reads chunked bodies without the size limit: bodies must say their length.
  if (req.has_header("Transfer-Encoding"))
    return ApiError(411, "send the body with a Content-Length (Transfer-Encoding is not accepted)",
                    "", "length_required");
  if (!lengths.empty()) {
    for (const std::string& v : lengths)
      if (v != lengths[0]) return bad("conflicting Content-Length headers");
    const std::string& v = lengths[0];
    if (v.empty() || v.size() > 19 || v.find_first_not_of("0123456789") != std::string::npos)
      return bad(fmt::format("Content-Length '{}' is not a byte count", v));
    if (std::stoull(v) > max_body)
      return ApiError(
          413, fmt::format("the request body is {} bytes, over the limit of {}", v, max_body), "",
          "body_too_large");
    if (lengths.size() > 1) {
      req.headers.erase("Content-Length");
      req.headers.emplace("Content-Length", v);
    }
  } else if (req.method == "POST" || req.method == "PUT" || req.method == "PATCH" ||
             req.method == "DELETE") {
    req.headers.emplace("Content-Length", "0");  // no body: not "until the connection closes"
    // And the connection ends after the answer: bytes after the head (a body whose length line
    // httplib dropped, as it drops "Content-Length:" with no value) must not be read as a next
    // request.
    req.headers.emplace(kCloseAfter, "1");
  }
  if (req.get_header_value("Content-Type").rfind("application/x-www-form-urlencoded", 0) == 0) {
    req.headers.erase("Content-Type");
    req.headers.emplace("Content-Type", "application/octet-stream");
  }
  return std::nullopt;
}

// Answers `e` and ends the connection: the request's body was not read, and on a kept-alive
// connection httplib would take it for the next request. (httplib 0.11 ignores a response's
// "Connection: close"; a content provider that reports failure after writing makes it close.)
void reject_and_close(httplib::Response& res, const ApiError& e) {
  auto text = std::make_shared<std::string>(dump(e.to_json()));
  res.status = e.status();
  res.set_content_provider(text->size(), "application/json",
                           [text](size_t offset, size_t, httplib::DataSink& sink) {
                             sink.write(text->data() + offset, text->size() - offset);
                             return false;
                           });
}

// RFC 7235: the scheme name is case-insensitive.
bool bearer_matches(const std::string& auth, const std::string& key) {
  if (auth.size() < 7 || auth[6] != ' ') return false;
  std::string scheme = auth.substr(0, 6);
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return scheme == "bearer" && auth.substr(7) == key;
}

std::vector<int32_t> end_of_turn_ids(const Model& model, const Tokenizer& tok) {
  std::vector<int32_t> ids = model.cfg.eos_ids;
  for (int32_t id : tok.stop_ids())
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  return ids;
}

// httplib 0.11 listens with a backlog of 5. Connections arriving in a burst while the listener
// thread waits for a core (the scheduler keeps both busy) overflow that queue, and the kernel
// then resets some of them; a second listen() on the bound socket raises the backlog.
class HttpServer : public httplib::Server {
 public:
  void raise_backlog() { ::listen(svr_sock_, SOMAXCONN); }
};

}  // namespace

struct Server::Impl {
  Impl(const Model& model, Tokenizer tok, ServerOptions opt)
      : ctx(model, std::move(tok), std::move(opt)) {}
  ServerContext ctx;
  HttpServer http;
  std::thread thread;
  std::mutex mu;
  int port = -1;
  bool stopped = false;
  bool serving = false;  // inside listen_after_bind
};

Server::Server(const Model& model, Backend& backend, Tokenizer tokenizer, ServerOptions opt)
    : impl_(std::make_unique<Impl>(model, std::move(tokenizer), std::move(opt))) {
  ServerContext& ctx = impl_->ctx;
  ctx.model_id = ctx.opt.model_name.empty()
                     ? std::filesystem::path(model.path).filename().replace_extension().string()
                     : ctx.opt.model_name;
  if (ctx.model_id.empty()) ctx.model_id = "flashrt";
  ctx.started = static_cast<int64_t>(std::time(nullptr));
  ctx.eos_ids = end_of_turn_ids(model, ctx.tok);
  ctx.backend_name = backend.name();
  ctx.scheduler = std::make_unique<Scheduler>(model, backend, ctx.tok, ctx.opt.scheduler);
  ctx.capsules = std::make_unique<CapsuleStore>(ctx.opt.capsule_dir, ctx.scheduler->fingerprint());

  httplib::Server& http = impl_->http;
  const int threads = std::max(4, ctx.opt.http_threads);
  http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http.set_payload_max_length(ctx.opt.max_body_bytes);
  http.set_keep_alive_timeout(5);  // also how long a new connection may take to send its request
  // A body that stalls mid-way (a Content-Length larger than what is sent) ends in 400 after this.
  http.set_read_timeout(kReadTimeoutSeconds);
  http.set_write_timeout(30);
  http.set_tcp_nodelay(true);  // a token per write: do not wait to fill packets

  // Only SO_REUSEADDR (a restart may bind a port in TIME_WAIT): httplib's default sets
  // SO_REUSEPORT, which let a second server bind the same port and share its connections.
  http.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  http.set_pre_routing_handler([&ctx](const httplib::Request& creq, httplib::Response& res) {
    // The request object is httplib's own (not const); the framing fix-ups must happen before it
    // reads the body, and this handler is the only place that runs then.
    auto& req = const_cast<httplib::Request&>(creq);
    if (const auto e = check_framing(req, ctx.opt.max_body_bytes)) {
      reject_and_close(res, *e);
      return httplib::Server::HandlerResponse::Handled;
    }
    if (ctx.opt.api_key.empty() || req.path.rfind("/v1/", 0) != 0)
      return httplib::Server::HandlerResponse::Unhandled;
    const std::string auth = req.get_header_value("Authorization");
    if (bearer_matches(auth, ctx.opt.api_key)) return httplib::Server::HandlerResponse::Unhandled;
    send_json(
        res,
        ApiError(401,
                 auth.empty() ? "missing API key (Authorization: Bearer KEY)" : "invalid API key",
                 "", "invalid_api_key")
            .to_json(),
        401);
    return httplib::Server::HandlerResponse::Handled;
  });
  // "Expect: 100-continue" is answered before routing: a request whose framing is refused gets
  // its error instead of an invitation to send the body.
  http.set_expect_100_continue_handler(
      [&ctx](const httplib::Request& creq, httplib::Response& res) {
        auto& req = const_cast<httplib::Request&>(creq);
        if (const auto e = check_framing(req, ctx.opt.max_body_bytes)) {
          reject_and_close(res, *e);
          return e->status();
        }
        return 100;
      });
  // A request marked by check_framing gets its answer, then the connection ends.
  http.set_post_routing_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!req.has_header(kCloseAfter) || res.content_provider_) return;
    auto text = std::make_shared<std::string>(std::move(res.body));
    res.body.clear();
    std::string type = res.get_header_value("Content-Type");
    if (type.empty()) type = "application/json";
    res.set_content_provider(text->size(), type.c_str(),
                             [text](size_t offset, size_t, httplib::DataSink& sink) {
                               sink.write(text->data() + offset, text->size() - offset);
                               return false;  // httplib 0.11's way to close after a response
                             });
  });
  http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    // Only fills responses nobody wrote: routing misses and httplib's own errors.
    if (!res.body.empty() || res.content_provider_) return;
    if (res.status == 404)
      send_json(res,
                ApiError(404, fmt::format("no route for {} {}", req.method, req.path), "",
                         "unknown_route")
                    .to_json(),
                404);
    else if (res.status == 400)
      send_json(res,
                ApiError(400,
                         fmt::format("malformed HTTP request (a bad request line or headers, or a "
                                     "body shorter than its Content-Length: none for {} s)",
                                     kReadTimeoutSeconds),
                         "", "bad_http_request")
                    .to_json(),
                400);
    else if (res.status == 413)
      send_json(res, ApiError(413, "the request body is too large", "", "body_too_large").to_json(),
                413);
    else
      send_json(res, ApiError(res.status, fmt::format("HTTP {}", res.status)).to_json(),
                res.status);
  });
  http.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          send_error(res, e);
        } catch (...) {
          send_json(res, ApiError(500, "internal error").to_json(), 500);
        }
      });
  http.set_logger([&ctx](const httplib::Request& req, const httplib::Response& res) {
    ctx.metrics.count_request(route_label(req), res.status);
  });

  http.Get("/health", guarded([&ctx](const httplib::Request&, httplib::Response& res) {
             const SchedulerGauges g = ctx.scheduler->gauges();
             send_json(res, {{"status", ctx.stopping ? "stopping" : "ok"},
                             {"model", ctx.model_id},
                             {"slots", g.slots},
                             {"slots_busy", g.slots_busy},
                             {"sessions", g.sessions},
                             {"sessions_suspended", g.sessions_suspended},
                             {"queued_jobs", g.queued_jobs}});
           }));
  http.Get("/metrics", guarded([&ctx](const httplib::Request&, httplib::Response& res) {
             res.set_content(ctx.metrics.render(ctx.scheduler->stats(), ctx.scheduler->gauges(),
                                                static_cast<int64_t>(ctx.capsules->size())),
                             "text/plain; version=0.0.4; charset=utf-8");
           }));
  add_openai_routes(http, ctx);
  add_session_routes(http, ctx);
  add_capsule_routes(http, ctx);
}

Server::~Server() {
  stop();
  // Streams are over (the scheduler's runs were cancelled); the scheduler goes before the model.
  impl_->ctx.scheduler.reset();
}

int Server::bind() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->port >= 0) return impl_->port;
  const ServerOptions& o = impl_->ctx.opt;
  int port = o.port;
  if (port == 0) {
    port = impl_->http.bind_to_any_port(o.host);
    if (port < 0) fail("cannot listen on {} (any port)", o.host);
  } else if (!impl_->http.bind_to_port(o.host, port)) {
    fail("cannot listen on {}:{} (in use? try --port)", o.host, port);
  }
  impl_->http.raise_backlog();
  impl_->port = port;
  return port;
}

void Server::serve() {
  bind();
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->stopped) return;
    impl_->serving = true;
  }
  impl_->http.listen_after_bind();
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->serving = false;
}

int Server::start() {
  const int p = bind();
  impl_->thread = std::thread([this] { serve(); });
  // Handlers are registered; the socket is bound, so connections queue until the loop runs.
  return p;
}

void Server::stop() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->stopped) return;
    impl_->stopped = true;
  }
  impl_->ctx.stopping = true;
  impl_->ctx.scheduler->cancel_all();
  // httplib's stop() does nothing before its loop runs, so a stop that races serve()'s start
  // waits for the loop to be up.
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(impl_->mu);
      if (!impl_->serving) break;
    }
    if (impl_->http.is_running()) impl_->http.stop();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (impl_->thread.joinable()) impl_->thread.join();
}

int Server::port() const {
  return impl_->port;
}

}  // namespace flashrt::server
