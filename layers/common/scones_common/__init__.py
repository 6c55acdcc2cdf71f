"""Code shared by the three workflow Lambdas: payload models, settings, errors, images, observability."""
