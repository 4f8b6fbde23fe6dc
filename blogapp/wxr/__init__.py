"""WordPress eXtended RSS (WXR): moving a blog in from WordPress, and out again."""
