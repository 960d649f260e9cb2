"""GAN evaluation: maths on precomputed inputs, and the feature networks that make the inputs.

Maths (feature arrays, class probabilities or images): fid (streaming feature statistics, Frechet
distance, `fid_from_features`, cached reference statistics), kid (torch-fidelity's subset draws),
inception_score, precision_recall (precision, recall, density, coverage), image (MSE, PSNR, SSIM),
diversity (class histograms, mode coverage, pairwise distances).
Networks: inception (the FID InceptionV3, StyleGAN's protocol), lpips (LPIPS v0.1, AlexNet / VGG16),
classifier + train_classifier (the domain classifier); their pretrained weights come through
gan.weights, torch files are read by torch_weights (no torch needed).
"""
