"""Statistics of simulated runs: latency histograms, batch means, confidence intervals."""
