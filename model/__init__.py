"""What ships in the serving image: estimator factory, verified artefacts, the HTTP app."""
