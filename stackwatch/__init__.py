"""StackWatch: real-time emission monitoring for industrial plants."""
