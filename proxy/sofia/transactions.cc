#include "proxy/sofia/transactions.h"

#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/su_tag.h>

#include <chrono>
#include <utility>

#include "common/log.h"

namespace pushgate::proxy::sofia {
namespace {

int OnResponseCb(nta_outgoing_magic_t* magic, nta_outgoing_t* orq, const sip_t* sip) noexcept {
  auto* txn = reinterpret_cast<Transaction*>(magic);
  if (!txn->orq) txn->orq.reset(orq);  // answered from inside nta_outgoing_mcreate
  txn->owner->OnResponse(*txn, orq, sip);
  return 0;
}

int OnCancelCb(nta_incoming_magic_t* magic, nta_incoming_t* irq, const sip_t* sip) noexcept {
  auto* txn = reinterpret_cast<Transaction*>(magic);
  if (txn->orq && sip != nullptr && sip->sip_request != nullptr &&
      sip->sip_request->rq_method == sip_method_cancel) {
    nta_outgoing_cancel(txn->orq.get());
  }
  return 0;
}

}  // namespace

Transactions::Transactions(ProxyMetrics& metrics, RetryAfterConfig retry)
    : metrics_(metrics), retry_(std::move(retry)), log_(log::Get("proxy.sofia")) {}

Transactions::~Transactions() { CloseAll(Outcome::kShuttingDown); }

Transaction& Transactions::Open(TransactionOwner& owner, IncomingPtr irq, std::string method) {
  auto txn = std::make_unique<Transaction>();
  txn->id = next_id_++;
  txn->owner = &owner;
  txn->irq = std::move(irq);
  txn->method = std::move(method);
  Transaction& ref = *txn;
  txns_.emplace(ref.id, std::move(txn));
  UpdateInFlight();
  return ref;
}

Transaction* Transactions::Find(uint64_t id) {
  auto it = txns_.find(id);
  return it == txns_.end() ? nullptr : it->second.get();
}

bool Transactions::Send(nta_agent_t* agent, Transaction& txn, const url_string_t* route,
                        MsgPtr msg) {
  const uint64_t id = txn.id;
  nta_outgoing_t* orq =
      nta_outgoing_mcreate(agent, &OnResponseCb, reinterpret_cast<nta_outgoing_magic_t*>(&txn),
                           route, msg.get(), TAG_END());
  if (orq == nullptr) return false;
  (void)msg.release();  // owned by the outgoing transaction now (nta_outgoing_mcreate took it)
  if (Transaction* t = Find(id); t != nullptr && !t->orq) t->orq.reset(orq);
  return true;
}

void Transactions::ForwardCancel(Transaction& txn) {
  nta_incoming_bind(txn.irq.get(), &OnCancelCb, reinterpret_cast<nta_incoming_magic_t*>(&txn));
}

void Transactions::Reply(uint64_t id, Outcome outcome) {
  auto it = txns_.find(id);
  if (it == txns_.end()) return;
  if (it->second->irq) {
    SipAnswer answer = AnswerFor(outcome, retry_);
    ReplyWith(it->second->irq.get(), answer);
    metrics_.Responses(answer.status).Inc();
  }
  Erase(it);
}

void Transactions::Relay(uint64_t id, MsgPtr response) {
  auto it = txns_.find(id);
  if (it == txns_.end()) return;
  Transaction& txn = *it->second;
  if (txn.irq) {
    sip_t* rsip = sip_object(response.get());
    int status = rsip && rsip->sip_status ? rsip->sip_status->st_status : 500;
    if (nta_incoming_mreply(txn.irq.get(), response.release()) < 0) {
      log_->warn("{}: relaying the {} response failed", txn.method, status);
    }
    metrics_.Responses(status).Inc();
  }
  Erase(it);
}

void Transactions::Close(uint64_t id) {
  auto it = txns_.find(id);
  if (it != txns_.end()) Erase(it);
}

void Transactions::CloseAll(Outcome outcome) {
  const SipAnswer answer = AnswerFor(outcome, retry_);
  for (auto& [id, txn] : txns_) {
    txn->orq.reset();
    if (txn->irq) ReplyWith(txn->irq.get(), answer);
  }
  txns_.clear();
  awaiting_.clear();
  UpdateInFlight();
}

void Transactions::Refuse(IncomingPtr irq, Outcome outcome, absl::string_view reason,
                          const HeaderList& extra) {
  SipAnswer answer = AnswerFor(outcome, retry_, reason, extra);
  ReplyWith(irq.get(), answer);
  metrics_.Responses(answer.status).Inc();
}

void Transactions::AwaitBackend(Transaction& txn) {
  if (!txn.awaiting) txn.awaiting = awaiting_.insert(awaiting_.end(), txn.id);
}

void Transactions::StopAwaiting(Transaction& txn) {
  if (txn.awaiting) awaiting_.erase(*txn.awaiting);
  txn.awaiting.reset();
}

void Transactions::Erase(Table::iterator it) {
  StopAwaiting(*it->second);
  // The transaction's destructors run after it left the table (nta may call back into it).
  std::unique_ptr<Transaction> txn = std::move(it->second);
  txns_.erase(it);
  UpdateInFlight();
}

void Transactions::UpdateInFlight() {
  const size_t n = txns_.size();
  in_flight_.store(n);
  metrics_.InFlight().Set(static_cast<double>(n));
  if (n == 0) {
    // Under the lock: a WaitIdle between its check and its wait still gets the wake-up.
    std::lock_guard<std::mutex> lock(idle_mu_);
    idle_.notify_all();
  }
}

size_t Transactions::WaitIdle(absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(idle_mu_);
  idle_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                 [this] { return in_flight_.load() == 0; });
  return in_flight_.load();
}

}  // namespace pushgate::proxy::sofia
