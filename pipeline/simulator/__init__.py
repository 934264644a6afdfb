"""The simulated lender's book with a known truth (`simulate` is the entry point), and
`known_truth`, the one hook through which stages get that truth when the data is simulated."""
