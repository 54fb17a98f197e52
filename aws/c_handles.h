// unique_ptr handles with stateless deleters for the C libraries aws/ wraps: no manual free on any path.
// Private to aws/.
#pragma once

#include <curl/curl.h>
#include <libxml/tree.h>

#include <memory>
#include <utility>

#include "base/unique_fd.h"

namespace sitesync::aws {

struct CurlEasyDeleter {
  void operator()(CURL* p) const { curl_easy_cleanup(p); }
};
struct CurlMultiDeleter {
  void operator()(CURLM* p) const { curl_multi_cleanup(p); }
};
struct CurlShareDeleter {
  void operator()(CURLSH* p) const { curl_share_cleanup(p); }
};
struct CurlSlistDeleter {
  void operator()(curl_slist* p) const { curl_slist_free_all(p); }
};
struct XmlDocDeleter {
  void operator()(xmlDoc* p) const { xmlFreeDoc(p); }
};

using CurlEasy = std::unique_ptr<CURL, CurlEasyDeleter>;
using CurlMulti = std::unique_ptr<CURLM, CurlMultiDeleter>;
using CurlShare = std::unique_ptr<CURLSH, CurlShareDeleter>;
using CurlSlist = std::unique_ptr<curl_slist, CurlSlistDeleter>;
using XmlDoc = std::unique_ptr<xmlDoc, XmlDocDeleter>;

// UniqueFd: base/unique_fd.h (sitesync::UniqueFd, visible here as aws::UniqueFd's enclosing namespace).

}  // namespace sitesync::aws
