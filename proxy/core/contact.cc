#include "proxy/core/contact.h"

#include <algorithm>
#include <cstdint>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/status.h"

namespace pushgate::proxy {
namespace {

absl::Status ContactError(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("Contact: ", what));
}

bool IsTokenChar(char c) {
  return absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '!' || c == '%' || c == '*' ||
         c == '_' || c == '+' || c == '`' || c == '\'' || c == '~';
}

// A parameter value outside quotes: token characters plus what hosts and IPv6 references use.
bool IsValueChar(char c) {
  return IsTokenChar(c) || c == ':' || c == '[' || c == ']' || c == '/' || c == '&' || c == '=' ||
         c == '$' || c == '@' || c == '?';
}

bool AllDigits(absl::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), absl::ascii_isdigit);
}

// q = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
bool ValidQ(absl::string_view v) {
  if (v.empty() || (v[0] != '0' && v[0] != '1')) return false;
  if (v.size() == 1) return true;
  if (v[1] != '.' || v.size() > 5) return false;
  for (char c : v.substr(2)) {
    if (!absl::ascii_isdigit(c)) return false;
    if (v[0] == '1' && c != '0') return false;
  }
  return true;
}

std::optional<uint32_t> ParseUint32Saturating(absl::string_view v) {
  if (!AllDigits(v)) return std::nullopt;
  uint64_t value = 0;
  for (char c : v) {
    value = value * 10 + static_cast<uint64_t>(c - '0');
    if (value > std::numeric_limits<uint32_t>::max()) return std::numeric_limits<uint32_t>::max();
  }
  return static_cast<uint32_t>(value);
}

class Scanner {
 public:
  explicit Scanner(absl::string_view text) : text_(text) {}

  bool done() const { return pos_ >= text_.size(); }
  char peek() const { return done() ? '\0' : text_[pos_]; }
  void SkipWs() {
    while (!done() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\r' ||
                       text_[pos_] == '\n')) {
      ++pos_;
    }
  }
  size_t pos() const { return pos_; }
  void set_pos(size_t p) { pos_ = p; }
  absl::string_view text() const { return text_; }

  // At '"': returns the raw quoted string including quotes, advancing past it.
  absl::StatusOr<absl::string_view> QuotedString() {
    const size_t start = pos_;
    ++pos_;
    while (!done()) {
      const char c = text_[pos_];
      if (c == '\\') {
        pos_ += 2;
        continue;
      }
      ++pos_;
      if (c == '"') return text_.substr(start, pos_ - start);
    }
    return ContactError("unterminated quoted string");
  }

 private:
  absl::string_view text_;
  size_t pos_ = 0;
};

absl::Status ValidateParam(absl::string_view name, absl::string_view value) {
  if (absl::EqualsIgnoreCase(name, "q")) {
    if (!ValidQ(value)) return ContactError(absl::StrCat("invalid q value \"", value, "\""));
  } else if (absl::EqualsIgnoreCase(name, "expires")) {
    if (!AllDigits(value)) {
      return ContactError(absl::StrCat("invalid expires value \"", value, "\""));
    }
  } else if (absl::EqualsIgnoreCase(name, "reg-id")) {
    uint32_t id = 0;
    if (!AllDigits(value) || value.size() > 10 || !absl::SimpleAtoi(value, &id) || id == 0 ||
        id > 0x7fffffffu) {
      return ContactError(absl::StrCat("invalid reg-id value \"", value, "\""));
    }
  } else if (absl::EqualsIgnoreCase(name, "+sip.instance")) {
    if (value.empty()) return ContactError("empty +sip.instance");
  }
  return absl::OkStatus();
}

// Parses one element at the scanner's position, up to (not including) the next top-level ',' or
// the end. Sets `wildcard` for "*".
// The display name, quoted or a token run before '<'. True when a <URI> follows (name-addr).
absl::StatusOr<bool> ParseDisplayName(Scanner& s, Contact& contact) {
  absl::string_view text = s.text();
  if (s.peek() == '"') {
    ASSIGN_OR_RETURN(absl::string_view quoted, s.QuotedString());
    contact.display_name = Unquote(quoted);
    s.SkipWs();
    if (s.peek() != '<') return ContactError("display name not followed by <URI>");
    return true;
  }
  // A '<' before the next ',' or ';' (outside quotes) means name-addr with a token display
  // name; otherwise it is a bare addr-spec.
  size_t i = s.pos();
  while (i < text.size() && text[i] != '<' && text[i] != ',' && text[i] != ';') ++i;
  if (i >= text.size() || text[i] != '<') return false;
  absl::string_view name = absl::StripAsciiWhitespace(text.substr(s.pos(), i - s.pos()));
  for (char c : name) {
    if (!IsTokenChar(c) && c != ' ' && c != '\t') {
      return ContactError(absl::StrCat("invalid display name \"", name, "\""));
    }
  }
  contact.display_name = std::string(name);
  s.set_pos(i);
  return true;
}

// The URI: in <...> for a name-addr, else up to the first ',' or ';'.
absl::Status ParseAddress(Scanner& s, bool name_addr, Contact& contact) {
  absl::string_view text = s.text();
  if (name_addr) {
    const size_t open = s.pos();  // at '<'
    const size_t close = text.find('>', open);
    if (close == absl::string_view::npos) return ContactError("unterminated <");
    auto uri = ParseUri(text.substr(open + 1, close - open - 1));
    if (!uri.ok()) return ContactError(uri.status().message());
    contact.uri = *std::move(uri);
    s.set_pos(close + 1);
    return absl::OkStatus();
  }
  size_t i = s.pos();
  while (i < text.size() && text[i] != ',' && text[i] != ';') ++i;
  absl::string_view raw = absl::StripAsciiWhitespace(text.substr(s.pos(), i - s.pos()));
  auto uri = ParseUri(raw);
  if (!uri.ok()) return ContactError(uri.status().message());
  if (!uri->headers.empty()) return ContactError("URI with headers must be in <...>");
  contact.uri = *std::move(uri);
  s.set_pos(i);
  return absl::OkStatus();
}

// The header parameters after the address, up to the next ',' or the end.
absl::Status ParseHeaderParams(Scanner& s, Contact& contact) {
  absl::string_view text = s.text();
  while (true) {
    s.SkipWs();
    if (s.done() || s.peek() == ',') return absl::OkStatus();
    if (s.peek() != ';') {
      return ContactError(
          absl::StrCat("unexpected character '", absl::string_view(&text[s.pos()], 1), "'"));
    }
    s.set_pos(s.pos() + 1);
    s.SkipWs();
    const size_t name_start = s.pos();
    while (!s.done() && IsTokenChar(s.peek())) s.set_pos(s.pos() + 1);
    absl::string_view name = text.substr(name_start, s.pos() - name_start);
    if (name.empty()) return ContactError("empty parameter name");
    s.SkipWs();
    std::string value;
    if (s.peek() == '=') {
      s.set_pos(s.pos() + 1);
      s.SkipWs();
      if (s.peek() == '"') {
        ASSIGN_OR_RETURN(absl::string_view quoted, s.QuotedString());
        value = std::string(quoted);
      } else {
        const size_t v_start = s.pos();
        while (!s.done() && IsValueChar(s.peek())) s.set_pos(s.pos() + 1);
        value = std::string(text.substr(v_start, s.pos() - v_start));
        if (value.empty()) {
          return ContactError(absl::StrCat("empty value for parameter \"", name, "\""));
        }
      }
    }
    RETURN_IF_ERROR(ValidateParam(name, value));
    contact.params.emplace_back(std::string(name), std::move(value));
  }
}

absl::Status ParseElement(Scanner& s, ContactList& list) {
  s.SkipWs();
  if (s.done() || s.peek() == ',') return ContactError("empty contact");
  if (s.peek() == '*') {
    const size_t save = s.pos();
    s.set_pos(save + 1);
    s.SkipWs();
    if (s.done() || s.peek() == ',') {
      list.wildcard = true;
      return absl::OkStatus();
    }
    s.set_pos(save);
  }
  Contact contact;
  ASSIGN_OR_RETURN(bool name_addr, ParseDisplayName(s, contact));
  RETURN_IF_ERROR(ParseAddress(s, name_addr, contact));
  RETURN_IF_ERROR(ParseHeaderParams(s, contact));
  list.contacts.push_back(std::move(contact));
  return absl::OkStatus();
}

}  // namespace

std::string Unquote(absl::string_view value) {
  if (value.size() < 2 || value.front() != '"' || value.back() != '"') return std::string(value);
  std::string out;
  value = value.substr(1, value.size() - 2);
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '\\' && i + 1 < value.size()) ++i;
    out.push_back(value[i]);
  }
  return out;
}

std::optional<std::string> Contact::param(absl::string_view name) const {
  for (const auto& [n, v] : params) {
    if (absl::EqualsIgnoreCase(n, name)) return v;
  }
  return std::nullopt;
}

void Contact::SetParam(absl::string_view name, absl::string_view value) {
  for (auto& [n, v] : params) {
    if (absl::EqualsIgnoreCase(n, name)) {
      v = std::string(value);
      return;
    }
  }
  params.emplace_back(std::string(name), std::string(value));
}

void Contact::RemoveParam(absl::string_view name) {
  std::erase_if(params, [&](const auto& p) { return absl::EqualsIgnoreCase(p.first, name); });
}

std::optional<uint32_t> Contact::expires() const {
  auto v = param("expires");
  if (!v) return std::nullopt;
  return ParseUint32Saturating(*v);
}

float Contact::q() const {
  auto v = param("q");
  float q = 1.0f;
  if (!v || !absl::SimpleAtof(*v, &q) || q < 0.0f || q > 1.0f) return 1.0f;
  return q;
}

std::string Contact::instance() const {
  auto v = param("+sip.instance");
  return v ? Unquote(*v) : std::string();
}

std::optional<uint32_t> Contact::reg_id() const {
  auto v = param("reg-id");
  uint32_t id = 0;
  if (!v || !absl::SimpleAtoi(*v, &id)) return std::nullopt;
  return id;
}

absl::Status AppendContacts(absl::string_view header_value, ContactList& list) {
  Scanner s(header_value);
  s.SkipWs();
  if (s.done()) return ContactError("empty header");
  while (true) {
    RETURN_IF_ERROR(ParseElement(s, list));
    s.SkipWs();
    if (s.done()) break;
    // ParseElement stops only at ',' or the end.
    s.set_pos(s.pos() + 1);
    s.SkipWs();
    if (s.done()) return ContactError("trailing comma");
  }
  return absl::OkStatus();
}

absl::StatusOr<ContactList> ParseContacts(absl::string_view header_value) {
  ContactList list;
  RETURN_IF_ERROR(AppendContacts(header_value, list));
  return list;
}

absl::StatusOr<Contact> ParseContact(absl::string_view text) {
  ASSIGN_OR_RETURN(ContactList list, ParseContacts(text));
  if (list.wildcard) return ContactError("\"*\" is not a single contact");
  if (list.contacts.size() != 1) return ContactError("expected exactly one contact");
  return std::move(list.contacts.front());
}

std::string FormatContact(const Contact& contact) {
  std::string out;
  if (!contact.display_name.empty()) {
    out.push_back('"');
    for (char c : contact.display_name) {
      if (c == '"' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
    out.append("\" ");
  }
  absl::StrAppend(&out, "<", FormatUri(contact.uri), ">");
  for (const auto& [name, value] : contact.params) {
    absl::StrAppend(&out, ";", name);
    if (!value.empty()) absl::StrAppend(&out, "=", value);
  }
  return out;
}

std::string FormatContacts(const ContactList& list) {
  std::vector<std::string> parts;
  if (list.wildcard) parts.push_back("*");
  for (const Contact& c : list.contacts) parts.push_back(FormatContact(c));
  return absl::StrJoin(parts, ", ");
}

}  // namespace pushgate::proxy
