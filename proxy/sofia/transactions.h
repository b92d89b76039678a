// The proxy's transactions: one Transaction per proxied request (the phone's server transaction
// and ours toward the backend, and the REGISTER state while the backend and the store answer),
// kept in one table and owned through the RAII wrappers of sofia_util.h; every answer the proxy
// makes itself goes out through here, from the outcome table (outcomes.h).
//
// Client transactions report to the TransactionOwner given to Open (the register relay, the
// stateful relay). Closing a transaction destroys both nta transactions; an owner may close its
// transaction from inside its callback.
//
// Threads: everything on the loop thread, except InFlight and WaitIdle (any thread).
#pragma once

#include <sofia-sip/nta.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "proxy/core/outcomes.h"
#include "proxy/core/registrar.h"
#include "proxy/sofia/proxy_metrics.h"
#include "proxy/sofia/sofia_util.h"
#include "spdlog/logger.h"

namespace pushgate::proxy::sofia {

struct Transaction;

class TransactionOwner {
 public:
  virtual ~TransactionOwner() = default;
  // A response (or nta's own 408/503) on the client transaction of `txn`.
  virtual void OnResponse(Transaction& txn, nta_outgoing_t* orq, const sip_t* sip) = 0;
};

// What a REGISTER keeps between its forwarding and the phone's answer.
struct RegisterState {
  RegisterRequest request;
  RegisterCheck check;
  std::vector<std::string> masquerade_values;  // the value sent for each contact
  std::string pns_provider;                    // for Feature-Caps, "" when no push params
  MsgPtr response;                             // the backend's 2xx, answered after the store
};

struct Transaction {
  uint64_t id = 0;
  TransactionOwner* owner = nullptr;
  IncomingPtr irq;  // null once answered
  OutgoingPtr orq;  // null until sent
  std::string method;
  std::unique_ptr<RegisterState> reg;  // REGISTER only
  // Position among the REGISTERs waiting for the backend (Transactions::AwaitBackend).
  std::optional<std::list<uint64_t>::iterator> awaiting;
};

class Transactions final {
 public:
  Transactions(ProxyMetrics& metrics, RetryAfterConfig retry);
  ~Transactions();  // CloseAll(kShuttingDown)
  Transactions(const Transactions&) = delete;
  Transactions& operator=(const Transactions&) = delete;

  // A new transaction for `irq`.
  Transaction& Open(TransactionOwner& owner, IncomingPtr irq, std::string method);
  Transaction* Find(uint64_t id);

  // Sends `msg` as the client side of `txn` (toward `route`, or by the request URI when null).
  // False when nta refused it. nta may answer (and the owner close `txn`) before this returns.
  bool Send(nta_agent_t* agent, Transaction& txn, const url_string_t* route, MsgPtr msg);
  // A CANCEL of `txn`'s server transaction cancels its client transaction.
  void ForwardCancel(Transaction& txn);

  // Answers transaction `id` with `outcome` and closes it.
  void Reply(uint64_t id, Outcome outcome);
  // Relays `response` (a copy without our Via) on transaction `id` and closes it.
  void Relay(uint64_t id, MsgPtr response);
  void Close(uint64_t id);
  // Answers every open transaction with `outcome` and closes them all.
  void CloseAll(Outcome outcome);

  // Answers a request that never became a transaction, and releases it.
  void Refuse(IncomingPtr irq, Outcome outcome, absl::string_view reason = {},
              const HeaderList& extra = {});
  const RetryAfterConfig& retry() const { return retry_; }

  // The REGISTERs waiting for the backend, oldest first: AwaitBackend adds `txn`, StopAwaiting
  // (or closing) removes it; OldestAwaiting is the first (0 when none).
  void AwaitBackend(Transaction& txn);
  void StopAwaiting(Transaction& txn);
  size_t awaiting() const { return awaiting_.size(); }
  uint64_t OldestAwaiting() const { return awaiting_.empty() ? 0 : awaiting_.front(); }

  size_t size() const { return txns_.size(); }
  // Thread-safe.
  size_t InFlight() const { return in_flight_.load(); }
  // Waits until no transaction is open or `timeout` passed; returns how many are open.
  // Thread-safe; not on the loop thread.
  size_t WaitIdle(absl::Duration timeout);

 private:
  using Table = absl::flat_hash_map<uint64_t, std::unique_ptr<Transaction>>;
  void Erase(Table::iterator it);
  void UpdateInFlight();

  ProxyMetrics& metrics_;
  RetryAfterConfig retry_;
  std::shared_ptr<spdlog::logger> log_;
  uint64_t next_id_ = 1;
  Table txns_;
  std::list<uint64_t> awaiting_;

  std::atomic<size_t> in_flight_{0};
  std::mutex idle_mu_;
  std::condition_variable idle_;
};

}  // namespace pushgate::proxy::sofia
