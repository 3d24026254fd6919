[
  inputs: ["{mix,.formatter}.exs", "mix/*.exs", "{config,lib,test,bench,demo}/**/*.{ex,exs}"]
]
