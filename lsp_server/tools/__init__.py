"""Commands around the product: `speclsp doctor`, `speclsp demo` and `speclsp pull`."""
