"""The suite's entry layer: the ``mixacm`` console script and the demo. It sits above every other package (the
library ``mixacm``, ``theory``, ``verification``, ``reports``) and is imported by none of them."""
