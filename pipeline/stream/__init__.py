"""Stream stages: thin Faust agents around the pure rules in this package."""
