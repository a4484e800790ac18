module github.com/veloxhq/velox

go 1.26

require github.com/ncw/swift/v2 v2.0.5
