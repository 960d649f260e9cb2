"""GAN evaluation maths on precomputed inputs: feature arrays, class probabilities or images.

fid (streaming feature statistics, Frechet distance, cached reference statistics), kid,
inception_score, precision_recall (precision, recall, density, coverage), image (MSE, PSNR, SSIM),
diversity (class histograms, mode coverage, pairwise distances). Feature networks live elsewhere.
"""
