#include "engine/columns.h"

#include <sys/mman.h>

#include <algorithm>
#include <iterator>
#include <cstdlib>
#include <cstring>
#include <new>

namespace clout {

absl::string_view StringArena::Store(absl::string_view s) {
  if (s.size() > left_) {
    // Large strings get a block of their own so small ones keep packing.
    size_t size = std::max(kBlockSize, s.size());
    blocks_.push_back(std::make_unique<char[]>(size));
    bytes_reserved_ += size;
    cursor_ = blocks_.back().get();
    left_ = size;
  }
  if (!s.empty()) std::memcpy(cursor_, s.data(), s.size());
  absl::string_view stored(cursor_, s.size());
  cursor_ += s.size();
  left_ -= s.size();
  return stored;
}

namespace {
constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kHugeThreshold = size_t{1} << 20;
}  // namespace

// One definition for every T: the template's static members forward here.
void* AllocateColumnBlock(size_t bytes) {
  if (bytes < kHugeThreshold) return ::operator new(bytes);
  size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  void* p = std::aligned_alloc(kHugePage, rounded);
  if (p == nullptr) throw std::bad_alloc();
  madvise(p, rounded, MADV_HUGEPAGE);  // a hint; failure is harmless
  return p;
}

void FreeColumnBlock(void* p, size_t bytes) {
  if (bytes < kHugeThreshold) {
    ::operator delete(p);
  } else {
    std::free(p);
  }
}

void InfluencerColumns::ShrinkToFit() {
  timestamp.shrink_to_fit();
  influencer_score.shrink_to_fit();
  initial_influencer_score.shrink_to_fit();
  probability.shrink_to_fit();
  bucket_span_code.shrink_to_fit();
  is_interim.shrink_to_fit();
  field_name_code.shrink_to_fit();
  field_value_code.shrink_to_fit();
  version.shrink_to_fit();
}

void InfluencerColumns::Reserve(size_t n) {
  timestamp.reserve(n);
  influencer_score.reserve(n);
  initial_influencer_score.reserve(n);
  probability.reserve(n);
  bucket_span_code.reserve(n);
  is_interim.reserve(n);
  field_name_code.reserve(n);
  field_value_code.reserve(n);
  version.reserve(n);
}

void SetMissingDoubles(JobResults& job) {
  const InfluencerColumns& c = job.columns;
  bool missing = false;
  for (const Column<double>* column :
       {&c.influencer_score, &c.initial_influencer_score, &c.probability}) {
    for (double v : *column) missing |= IsMissing(v);
  }
  job.may_have_missing_doubles = missing;
}

void SetTimestampRange(JobResults& job) {
  const Column<int64_t>& ts = job.columns.timestamp;
  if (ts.empty()) return;
  if (job.time_ordered) {
    job.min_timestamp = ts.front();
    job.max_timestamp = ts.back();
    return;
  }
  auto [lo, hi] = std::minmax_element(ts.begin(), ts.end());
  job.min_timestamp = *lo;
  job.max_timestamp = *hi;
}

DeletedRows::DeletedRows(std::vector<uint32_t> sorted) : size_(sorted.size()) {
  if (!sorted.empty()) AddLevel(std::move(sorted));
  SetLargeLevels(nullptr, 0, 0, {});
}

void DeletedRows::SetLargeLevels(std::shared_ptr<const LevelBitmap> before,
                                 size_t before_levels, size_t untouched,
                                 std::vector<LevelBitmap::Rows> extra) {
  size_t large = 0;
  while (large < levels_.size() &&
         levels_[large]->size() >= kBitmapLevelRows) {
    ++large;
  }
  large_levels_ = large;
  if (large == 0) {
    large_bitmap_ = nullptr;
  } else if (before != nullptr && untouched == before_levels &&
             before_levels == large) {
    large_bitmap_ = std::move(before);  // the same levels: With keeps them
  } else if (before != nullptr && before->IfBuilt() != nullptr) {
    // `before`'s rows are all in this set's large levels: its levels
    // [0, untouched) are this set's, and a large level it folded away
    // made this set's newest level large.
    large_bitmap_ = std::make_shared<const LevelBitmap>(std::move(before),
                                                        std::move(extra));
  } else {
    large_bitmap_ = std::make_shared<const LevelBitmap>();
  }
}

void DeletedRows::AddLevel(std::vector<uint32_t> level) {
  const bool large = level.size() >= kBitmapLevelRows;
  std::shared_ptr<LevelFilter> filter;
  if (!large) {
    filter = std::make_shared<LevelFilter>();
    // 16 bits a row or more (at least 64 in all): about 1.4% false hits.
    filter->bits_log2 = 6;
    while ((uint64_t{1} << filter->bits_log2) < 16 * level.size()) {
      ++filter->bits_log2;
    }
    filter->bits.assign((uint64_t{1} << filter->bits_log2) / 64, 0);
    for (uint32_t row : level) {
      const auto [a, b] = filter->Probes(LevelFilter::Hash(row));
      filter->bits[a / 64] |= uint64_t{1} << (a % 64);
      filter->bits[b / 64] |= uint64_t{1} << (b % 64);
    }
  }
  filters_.push_back(std::move(filter));
  levels_.push_back(
      std::make_shared<const std::vector<uint32_t>>(std::move(level)));
}

const std::vector<uint64_t>& DeletedRows::LevelBitmap::Get(
    const std::vector<std::shared_ptr<const std::vector<uint32_t>>>& levels,
    size_t count) const {
  if (built_.load(std::memory_order_acquire)) return bits_;
  std::lock_guard<std::mutex> lock(mu_);
  if (!built_.load(std::memory_order_relaxed)) {
    const std::vector<uint64_t>* base =
        base_ != nullptr ? base_->IfBuilt() : nullptr;
    // The rows to set: `extra` over a copy of the base, or every level.
    std::vector<const std::vector<uint32_t>*> sets;
    if (base != nullptr) {
      for (const Rows& rows : extra_) sets.push_back(rows.get());
    } else {
      for (size_t i = 0; i < count; ++i) sets.push_back(levels[i].get());
    }
    uint32_t last = 0;
    for (const std::vector<uint32_t>* rows : sets) {
      if (!rows->empty()) last = std::max(last, rows->back());
    }
    const size_t base_words = base != nullptr ? base->size() : 0;
    std::vector<uint64_t> bits(std::max(base_words, size_t{last} / 64 + 1), 0);
    if (base != nullptr) std::copy(base->begin(), base->end(), bits.begin());
    for (const std::vector<uint32_t>* rows : sets) {
      for (uint32_t row : *rows) bits[row / 64] |= uint64_t{1} << (row % 64);
    }
    bits_ = std::move(bits);
    built_.store(true, std::memory_order_release);
    base_.reset();
    extra_ = {};
  }
  return bits_;
}

std::vector<uint64_t> DeletedRows::Bitmap(size_t rows) const {
  std::vector<uint64_t> bits((rows + 63) / 64, 0);
  size_t first_small = 0;
  if (large_bitmap_ != nullptr) {
    const std::vector<uint64_t>& large =
        large_bitmap_->Get(levels_, large_levels_);
    std::copy_n(large.begin(), std::min(large.size(), bits.size()),
                bits.begin());
    first_small = large_levels_;
  }
  for (size_t i = first_small; i < levels_.size(); ++i) {
    for (uint32_t row : *levels_[i]) bits[row / 64] |= uint64_t{1} << (row % 64);
  }
  return bits;
}

bool DeletedRows::Contains(uint32_t row) const {
  if (large_bitmap_ != nullptr) {
    const std::vector<uint64_t>* bits = large_bitmap_->IfBuilt();
    if (bits == nullptr) bits = &large_bitmap_->Get(levels_, large_levels_);
    if (row / 64 < bits->size() && (((*bits)[row / 64] >> (row % 64)) & 1)) {
      return true;
    }
  }
  if (large_levels_ == levels_.size()) return false;
  const uint64_t hash = LevelFilter::Hash(row);  // one for every level
  for (size_t i = large_levels_; i < levels_.size(); ++i) {
    if (!filters_[i]->MayContain(hash)) continue;
    const std::vector<uint32_t>& level = *levels_[i];
    if (std::binary_search(level.begin(), level.end(), row)) return true;
  }
  return false;
}

size_t DeletedRows::bytes() const {
  size_t bytes = large_bitmap_ != nullptr ? large_bitmap_->bytes() : 0;
  for (size_t i = 0; i < levels_.size(); ++i) {
    bytes += levels_[i]->capacity() * sizeof(uint32_t);
    if (filters_[i] != nullptr) bytes += filters_[i]->bits.capacity() * 8;
  }
  return bytes;
}

size_t DeletedRows::Rank(uint32_t row) const {
  size_t rank = 0;
  for (const auto& level : levels_) {
    rank += static_cast<size_t>(
        std::lower_bound(level->begin(), level->end(), row) - level->begin());
  }
  return rank;
}

std::shared_ptr<const DeletedRows> DeletedRows::With(
    std::vector<uint32_t> added) const {
  auto next = std::shared_ptr<DeletedRows>(new DeletedRows());
  next->levels_ = levels_;
  next->filters_ = filters_;
  next->large_levels_ = large_levels_;
  next->large_bitmap_ = large_bitmap_;
  next->size_ = size_ + added.size();
  if (added.empty()) return next;
  // With this set's bitmap built, a new one starts from it and sets the
  // rows it lacks: the small levels folded away and the added rows.
  const bool derive =
      large_bitmap_ != nullptr && large_bitmap_->IfBuilt() != nullptr;
  std::vector<LevelBitmap::Rows> extra;
  if (derive) {
    extra.push_back(std::make_shared<const std::vector<uint32_t>>(added));
  }
  std::vector<uint32_t> level = std::move(added);
  // Fold while the level before is at most twice this one: levels then
  // shrink by more than half from oldest to newest.
  while (!next->levels_.empty() &&
         next->levels_.back()->size() <= 2 * level.size()) {
    const std::vector<uint32_t>& before = *next->levels_.back();
    std::vector<uint32_t> folded;
    folded.reserve(before.size() + level.size());
    std::merge(before.begin(), before.end(), level.begin(), level.end(),
               std::back_inserter(folded));
    level = std::move(folded);
    if (derive && next->levels_.size() > large_levels_) {
      extra.push_back(next->levels_.back());  // a small level
    }
    next->levels_.pop_back();
    next->filters_.pop_back();
  }
  // The large levels' bitmap is kept while no fold reached them: the
  // levels before the first one folded are this set's own.
  const size_t untouched = std::min(next->levels_.size(), large_levels_);
  next->AddLevel(std::move(level));
  next->SetLargeLevels(large_bitmap_, large_levels_, untouched,
                       std::move(extra));
  return next;
}

std::vector<uint32_t> DeletedRows::Sorted() const {
  std::vector<uint32_t> rows;
  rows.reserve(size_);
  ForEachUnordered([&](uint32_t row) { rows.push_back(row); });
  std::sort(rows.begin(), rows.end());
  return rows;
}

DeletedRows::Cursor::Cursor(const DeletedRows* rows) {
  if (rows == nullptr) return;
  heads_.reserve(rows->levels_.size());
  for (const auto& level : rows->levels_) {
    if (level->empty()) continue;
    heads_.push_back({level->data(), level->data() + level->size()});
    next_ = std::min<uint64_t>(next_, level->front());
  }
}

bool DeletedRows::Cursor::Advance(uint32_t row) {
  uint64_t next = UINT64_MAX;
  bool found = false;
  for (Head& head : heads_) {
    while (head.at != head.end && *head.at < row) ++head.at;
    if (head.at == head.end) continue;
    found |= *head.at == row;
    next = std::min<uint64_t>(next, *head.at);
  }
  next_ = next;
  return found;
}

std::optional<int64_t> DeletedRowCache::Find(
    const RowPredicate& predicate) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [known, count] : entries_) {
    if (known == predicate) return count;
  }
  return std::nullopt;
}

void DeletedRowCache::Add(const RowPredicate& predicate, int64_t count) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [known, ignored] : entries_) {
    if (known == predicate) return;
  }
  if (entries_.size() == kEntries) entries_.erase(entries_.begin());
  entries_.push_back({predicate, count});
}

std::shared_ptr<const std::vector<uint64_t>> DeletedRowCache::Bitmap(
    const DeletedRows& deleted, size_t rows) const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (bitmap_ != nullptr) return bitmap_;
  }
  auto bitmap = std::make_shared<std::vector<uint64_t>>(deleted.Bitmap(rows));
  std::lock_guard<std::mutex> lock(mu_);
  if (bitmap_ == nullptr) bitmap_ = std::move(bitmap);
  return bitmap_;
}

void DeletedRowCache::KeyShelf::Prune(const DeletedRows& list) {
  const std::vector<DeletedRows::Level>& levels = list.level_rows();
  const size_t newest = levels.empty() ? 0 : levels.back()->size();
  std::lock_guard<std::mutex> lock(mu);
  for (OrderEntry& entry : orders) {
    std::erase_if(entry.levels, [&](const LevelKeys& k) {
      return k.level->size() > newest &&
             std::find(levels.begin(), levels.end(), k.level) == levels.end();
    });
  }
}

std::shared_ptr<const DeletedRowCache::OrderRuns>
DeletedRowCache::OrderEntry::RunsOf(
    const std::vector<DeletedRows::Level>& levels) {
  for (size_t i = lists.size(); i-- > 0;) {
    if (lists[i].levels != levels) continue;
    std::rotate(lists.begin() + static_cast<ptrdiff_t>(i),
                lists.begin() + static_cast<ptrdiff_t>(i) + 1, lists.end());
    return lists.back().runs;
  }
  return nullptr;
}

DeletedRowCache::OrderEntry* DeletedRowCache::KeyShelf::Touch(
    const std::string& order, bool make) {
  size_t i = 0;
  while (i < orders.size() && orders[i].order != order) ++i;
  if (i == orders.size()) {
    if (!make) return nullptr;
    if (orders.size() == kOrders) orders.erase(orders.begin());
    orders.push_back({order, {}, 0, {}});
    return &orders.back();
  }
  std::rotate(orders.begin() + static_cast<ptrdiff_t>(i),
              orders.begin() + static_cast<ptrdiff_t>(i) + 1, orders.end());
  return &orders.back();
}

size_t DeletedRowCache::bytes() const {
  size_t bytes = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (bitmap_ != nullptr) bytes += bitmap_->capacity() * sizeof(uint64_t);
  }
  std::lock_guard<std::mutex> lock(shelf_->mu);
  for (const OrderEntry& entry : shelf_->orders) {
    for (const LevelKeys& k : entry.levels) {
      bytes += k.keys->capacity() * sizeof(OrderKeys::value_type);
    }
  }
  return bytes;
}

std::shared_ptr<const DeletedRowCache::OrderRuns> DeletedRowCache::KeysInOrder(
    const std::string& order, const DeletedRows& deleted,
    absl::FunctionRef<uint64_t(uint32_t)> key_of, size_t build_limit,
    size_t positions_instead) const {
  const std::vector<DeletedRows::Level>& levels = deleted.level_rows();
  std::vector<LevelKeys> known;
  size_t credit = 0;
  {
    std::lock_guard<std::mutex> lock(shelf_->mu);
    if (OrderEntry* entry = shelf_->Touch(order, false)) {
      if (std::shared_ptr<const OrderRuns> runs = entry->RunsOf(levels)) {
        return runs;
      }
      known = entry->levels;
      credit = std::exchange(entry->credit, 0);  // held while this keys
    }
  }
  std::vector<LevelKeys> now(levels.size());
  for (size_t i = 0; i < levels.size(); ++i) {
    now[i].level = levels[i];
    for (const LevelKeys& k : known) {
      if (k.level == levels[i]) now[i].keys = k.keys;
    }
  }
  // Keyed levels this list does not hold: a level of this list folded
  // from them (DeletedRows::With) reuses their keys, and keys only its
  // other rows (the writes' since). Largest first: a level folded from
  // folded levels holds the largest whole, and that one holds the others.
  std::vector<const LevelKeys*> gone;
  for (const LevelKeys& k : known) {
    if (std::find(levels.begin(), levels.end(), k.level) == levels.end()) {
      gone.push_back(&k);
    }
  }
  std::stable_sort(gone.begin(), gone.end(),
                   [](const LevelKeys* a, const LevelKeys* b) {
                     return a->level->size() > b->level->size();
                   });
  // The newest levels are the smallest.
  const size_t limit =
      credit > SIZE_MAX - build_limit ? SIZE_MAX : build_limit + credit;
  size_t budget = limit;
  bool complete = true;
  for (size_t i = now.size(); i-- > 0;) {
    if (now[i].keys != nullptr) continue;
    const std::vector<uint32_t>& rows = *now[i].level;
    // At most the gone levels no larger than it can be reused: past the
    // budget even so, it is skipped before any copy.
    size_t reusable = 0;
    for (const LevelKeys* g : gone) {
      if (g->level->size() <= rows.size()) reusable += g->level->size();
    }
    if (rows.size() > budget + reusable) {
      complete = false;
      continue;
    }
    std::vector<const LevelKeys*> parts;  // the gone levels it holds
    std::vector<uint32_t> rest = rows;    // its other rows, ascending
    for (const LevelKeys* g : gone) {
      const std::vector<uint32_t>& held = *g->level;
      if (held.empty() || held.size() > rest.size() ||
          !std::includes(rest.begin(), rest.end(), held.begin(), held.end())) {
        continue;
      }
      parts.push_back(g);
      std::vector<uint32_t> other;
      other.reserve(rest.size() - held.size());
      std::set_difference(rest.begin(), rest.end(), held.begin(), held.end(),
                          std::back_inserter(other));
      rest = std::move(other);
    }
    if (rest.size() > budget) {
      complete = false;
      continue;
    }
    budget -= rest.size();
    auto keys = std::make_shared<OrderKeys>();
    keys->reserve(rows.size());
    for (uint32_t row : rest) keys->push_back({key_of(row), row});
    std::sort(keys->begin(), keys->end());
    // Smallest first (`gone` is largest first): the copies add up to about
    // twice the level, not once per part.
    for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
      const OrderKeys& more = *(*it)->keys;
      OrderKeys merged(keys->size() + more.size());
      std::merge(keys->begin(), keys->end(), more.begin(), more.end(),
                 merged.begin());
      *keys = std::move(merged);
    }
    now[i].keys = std::move(keys);
  }
  std::shared_ptr<const OrderRuns> runs;
  if (complete) {
    auto all = std::make_shared<OrderRuns>();
    for (const LevelKeys& k : now) all->push_back(k.keys);
    runs = std::move(all);
  }
  const size_t keyed = limit - budget;
  // The credit held back, less what keying past build_limit used.
  const size_t unused = credit - std::min(credit, keyed > build_limit
                                                      ? keyed - build_limit
                                                      : size_t{0});
  std::lock_guard<std::mutex> lock(shelf_->mu);
  OrderEntry& entry = *shelf_->Touch(order, true);
  entry.credit = std::min(SIZE_MAX - unused, entry.credit) + unused;
  if (std::shared_ptr<const OrderRuns> built = entry.RunsOf(levels)) {
    return built;  // built meanwhile
  }
  // What this call keyed joins the shelf (levels kept for other lists
  // stay: only Prune drops any).
  for (LevelKeys& k : now) {
    if (k.keys != nullptr &&
        std::none_of(entry.levels.begin(), entry.levels.end(),
                     [&](const LevelKeys& e) { return e.level == k.level; })) {
      entry.levels.push_back(std::move(k));
    }
  }
  if (complete) {
    if (entry.lists.size() == kListsPerOrder) {
      entry.lists.erase(entry.lists.begin());
    }
    entry.lists.push_back({levels, runs});
  } else {
    const size_t earned = positions_instead / kPositionsPerKey;
    entry.credit = std::min(SIZE_MAX - earned, entry.credit) + earned;
  }
  return runs;
}

std::shared_ptr<const JobResults> MaterializeJob(
    const std::shared_ptr<const JobResults>& job) {
  if (job->segments.empty()) return job;
  auto out = std::make_shared<JobResults>();
  out->job_id = job->job_id;
  InfluencerColumns& c = out->columns;
  c.Reserve(job->live_rows);
  for (const JobResults::Segment& segment : job->segments) {
    const JobResults& rows = *segment.rows;
    out->arenas.insert(out->arenas.end(), rows.arenas.begin(), rows.arenas.end());
    // This segment's codes -> the materialised job's.
    std::vector<uint32_t> string_map(rows.strings.size(), UINT32_MAX);
    auto code_of = [&](uint32_t code) {
      if (string_map[code] == UINT32_MAX) {
        auto [it, inserted] = out->string_codes.emplace(
            rows.strings[code], static_cast<uint32_t>(out->strings.size()));
        if (inserted) out->strings.push_back(rows.strings[code]);
        string_map[code] = it->second;
      }
      return string_map[code];
    };
    std::vector<uint32_t> span_map(rows.bucket_spans.size());
    for (size_t i = 0; i < rows.bucket_spans.size(); ++i) {
      auto found = std::find(out->bucket_spans.begin(), out->bucket_spans.end(),
                             rows.bucket_spans[i]);
      span_map[i] = static_cast<uint32_t>(found - out->bucket_spans.begin());
      if (found == out->bucket_spans.end()) {
        out->bucket_spans.push_back(rows.bucket_spans[i]);
      }
    }
    DeletedRows::Cursor deleted(segment.deleted.get());
    const InfluencerColumns& from = rows.columns;
    for (uint32_t r = 0; r < from.size(); ++r) {
      if (deleted.Contains(r)) continue;
      c.AppendRow(from, r, code_of,
                  [&](uint32_t code) { return span_map[code]; });
      out->interim_rows += from.is_interim[r];
    }
  }
  out->time_ordered = std::is_sorted(c.timestamp.begin(), c.timestamp.end());
  SetTimestampRange(*out);
  SetMissingDoubles(*out);
  // The field names of the rows it holds, in its own dictionary.
  std::vector<bool> named(out->strings.size(), false);
  for (uint32_t code : c.field_name_code) {
    if (named[code]) continue;
    named[code] = true;
    out->field_names.push_back(out->strings[code]);
  }
  return out;
}

}  // namespace clout
