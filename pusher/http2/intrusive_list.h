// An intrusive doubly-linked list: an element joins a list through a node it contains, so that
// moving it between lists allocates nothing (the pool keeps every request in one or two lists).
//
// A node unlinks itself when destroyed, so an element may be destroyed while listed; a list must
// therefore outlive its elements (declare it before what owns them). Not thread-safe.
#pragma once

namespace pushgate::http2 {

template <typename T>
class IntrusiveList;

// The links of an element in one list. `owner` is the element (null in a list's sentinel).
template <typename T>
class IntrusiveListNode {
 public:
  explicit IntrusiveListNode(T* owner) : owner_(owner) {}
  ~IntrusiveListNode() { Unlink(); }
  IntrusiveListNode(const IntrusiveListNode&) = delete;
  IntrusiveListNode& operator=(const IntrusiveListNode&) = delete;

  bool linked() const { return next_ != this; }
  // Leaves its list (no-op when not in one).
  void Unlink() {
    prev_->next_ = next_;
    next_->prev_ = prev_;
    prev_ = next_ = this;
  }

 private:
  friend class IntrusiveList<T>;
  T* const owner_;
  IntrusiveListNode* prev_ = this;
  IntrusiveListNode* next_ = this;
};

// `Node` names the member of T that links it into this list.
template <typename T>
class IntrusiveList {
 public:
  using Node = IntrusiveListNode<T>;
  using NodeOf = Node T::*;

  explicit IntrusiveList(NodeOf node) : node_(node) {}
  IntrusiveList(const IntrusiveList&) = delete;
  IntrusiveList& operator=(const IntrusiveList&) = delete;

  bool empty() const { return !head_.linked(); }
  // Null when empty.
  T* front() const { return head_.next_->owner_; }
  T* back() const { return head_.prev_->owner_; }
  // The neighbours of a listed element, null at the ends.
  T* Next(T* element) const { return (element->*node_).next_->owner_; }
  T* Prev(T* element) const { return (element->*node_).prev_->owner_; }
  bool Contains(const T* element) const { return (element->*node_).linked(); }

  // Inserts `element` (not listed) before `pos` (at the end when `pos` is null).
  void InsertBefore(T* pos, T* element) {
    Node& n = element->*node_;
    Node* after = pos != nullptr ? &(pos->*node_) : &head_;
    n.next_ = after;
    n.prev_ = after->prev_;
    n.prev_->next_ = &n;
    after->prev_ = &n;
  }
  void PushBack(T* element) { InsertBefore(nullptr, element); }
  void PushFront(T* element) { InsertBefore(front(), element); }
  void Remove(T* element) { (element->*node_).Unlink(); }

 private:
  const NodeOf node_;
  Node head_{nullptr};  // sentinel: its owner is null, so front()/Next() end with null
};

}  // namespace pushgate::http2
