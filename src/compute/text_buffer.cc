#include "compute/text_buffer.h"

#include <cstring>
#include <span>

namespace fieldstack::compute {

Status InputBuffer::Fill() {
  if (eof) return Status::Ok();
  if (pos > 0) {
    std::memmove(data.data(), data.data() + pos, end - pos);
    end -= pos;
    pos = 0;
  }
  if (end == data.size()) data.resize(data.size() * 2);
  FS_ASSIGN_OR_RETURN(size_t n,
                      source->Read(std::span<uint8_t>(reinterpret_cast<uint8_t*>(data.data()) + end,
                                                      data.size() - end)));
  if (n == 0) eof = true;
  end += n;
  return Status::Ok();
}

Status OutputBuffer::EndRecord() {
  ++records;
  if (text.size() >= kTextBufferBytes) {
    FS_RETURN_IF_ERROR(sink->Write(text));
    text.clear();
  }
  return Status::Ok();
}

Status OutputBuffer::Finish() {
  if (finished) return Status::Ok();
  finished = true;
  if (!text.empty()) FS_RETURN_IF_ERROR(sink->Write(text));
  text.clear();
  return sink->Close();
}

}  // namespace fieldstack::compute
