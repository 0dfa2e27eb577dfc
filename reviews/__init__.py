"""The regulator's technical review (art. 8, 13, 17): the expert library, reviews whose experts are
drawn at random in a way anyone can re-check, the experts' opinions and the regulator's decision."""
