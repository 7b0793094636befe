#include "server/server.h"

#include <fmt/format.h>
#include <sys/socket.h>

#include <ctime>
#include <filesystem>
#include <mutex>
#include <thread>

#include "server/api_error.h"
#include "server/server_context.h"

namespace flashrt::server {

using nlohmann::json;

namespace {

// Metric label for a request path: ids collapsed so the label set stays small.
std::string route_label(const httplib::Request& req) {
  const std::string& p = req.path;
  for (const char* base : {"/v1/sessions/", "/v1/capsules/", "/v1/models/"}) {
    const std::string b = base;
    if (p.rfind(b, 0) == 0) {
      const size_t slash = p.find('/', b.size());
      return b + "{id}" + (slash == std::string::npos ? "" : p.substr(slash));
    }
  }
  static const char* known[] = {
      "/health",      "/metrics",    "/v1/models", "/v1/completions", "/v1/chat/completions",
      "/v1/sessions", "/v1/capsules"};
  for (const char* k : known)
    if (p == k) return p;
  return "other";
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
  ctx.scheduler = std::make_unique<Scheduler>(model, backend, ctx.tok, ctx.opt.scheduler);
  ctx.capsules = std::make_unique<CapsuleStore>(ctx.opt.capsule_dir, ctx.scheduler->fingerprint());

  httplib::Server& http = impl_->http;
  const int threads = std::max(4, ctx.opt.http_threads);
  http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http.set_payload_max_length(ctx.opt.max_body_bytes);
  http.set_keep_alive_timeout(5);  // also how long a new connection may take to send its request
  http.set_read_timeout(30);
  http.set_write_timeout(30);
  http.set_tcp_nodelay(true);  // a token per write: do not wait to fill packets

  http.set_pre_routing_handler([&ctx](const httplib::Request& req, httplib::Response& res) {
    if (ctx.opt.api_key.empty() || req.path.rfind("/v1/", 0) != 0)
      return httplib::Server::HandlerResponse::Unhandled;
    const std::string auth = req.get_header_value("Authorization");
    if (auth == "Bearer " + ctx.opt.api_key) return httplib::Server::HandlerResponse::Unhandled;
    send_json(
        res,
        ApiError(401,
                 auth.empty() ? "missing API key (Authorization: Bearer KEY)" : "invalid API key",
                 "", "invalid_api_key")
            .to_json(),
        401);
    return httplib::Server::HandlerResponse::Handled;
  });
  http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    // Only fills responses nobody wrote: routing misses and httplib's own errors.
    if (!res.body.empty()) return;
    if (res.status == 404)
      send_json(res,
                ApiError(404, fmt::format("no route for {} {}", req.method, req.path), "",
                         "unknown_route")
                    .to_json(),
                404);
    else if (res.status == 400)
      send_json(res,
                ApiError(400,
                         "malformed HTTP request (a POST without a body still needs "
                         "'Content-Length: 0'; with curl, send -d '{}')",
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
