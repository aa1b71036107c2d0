package k8sstorage

import (
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/apitesting"
	examplev1 "k8s.io/apiserver/pkg/apis/example/v1"
	"k8s.io/apiserver/pkg/features"
	storagetesting "k8s.io/apiserver/pkg/storage/testing"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/component-base/featuregate"
	featuregatetesting "k8s.io/component-base/featuregate/testing"
)

// conformance is one Run* function of k8s.io/apiserver/pkg/storage/testing
// wired as k8s.io/apiserver/pkg/storage/etcd3's store_test.go and
// watcher_test.go wire it.
type conformance struct {
	name  string
	gates map[featuregate.Feature]bool // feature gates set for the subtest, as upstream sets them
	opts  options
	run   func(t *testing.T, e *env)
}

func gate(name featuregate.Feature, on bool) map[featuregate.Feature]bool {
	return map[featuregate.Feature]bool{name: on}
}

// oneSecondProgress is upstream's ProgressNotify/bookmark setting.
var oneSecondProgress = options{server: serverOptions{progressNotify: time.Second}}

// storeTests mirrors store_test.go.
var storeTests = []conformance{
	{name: "Create", run: func(t *testing.T, e *env) {
		storagetesting.RunTestCreate(e.ctx, t, e.store, e.checkStored())
	}},
	{name: "CreateWithTTL", run: func(t *testing.T, e *env) { storagetesting.RunTestCreateWithTTL(e.ctx, t, e.store) }},
	{name: "CreateWithKeyExist", run: func(t *testing.T, e *env) { storagetesting.RunTestCreateWithKeyExist(e.ctx, t, e.store) }},
	{name: "Get", run: func(t *testing.T, e *env) { storagetesting.RunTestGet(e.ctx, t, e.store) }},
	{name: "UnconditionalDelete", run: func(t *testing.T, e *env) { storagetesting.RunTestUnconditionalDelete(e.ctx, t, e.store) }},
	{name: "ConditionalDelete", run: func(t *testing.T, e *env) { storagetesting.RunTestConditionalDelete(e.ctx, t, e.store) }},
	{name: "DeleteWithSuggestion", run: func(t *testing.T, e *env) { storagetesting.RunTestDeleteWithSuggestion(e.ctx, t, e.store) }},
	{name: "DeleteWithSuggestionAndConflict", run: func(t *testing.T, e *env) {
		storagetesting.RunTestDeleteWithSuggestionAndConflict(e.ctx, t, e.store)
	}},
	{name: "DeleteWithSuggestionOfDeletedObject", run: func(t *testing.T, e *env) {
		storagetesting.RunTestDeleteWithSuggestionOfDeletedObject(e.ctx, t, e.store)
	}},
	{name: "ValidateDeletionWithSuggestion", run: func(t *testing.T, e *env) {
		storagetesting.RunTestValidateDeletionWithSuggestion(e.ctx, t, e.store)
	}},
	{name: "ValidateDeletionWithOnlySuggestionValid", run: func(t *testing.T, e *env) {
		storagetesting.RunTestValidateDeletionWithOnlySuggestionValid(e.ctx, t, e.store)
	}},
	{name: "DeleteWithConflict", run: func(t *testing.T, e *env) { storagetesting.RunTestDeleteWithConflict(e.ctx, t, e.store) }},
	{name: "DeleteWithConflictAndMissingExpectedTransformOrDecodeError",
		gates: gate(features.AllowUnsafeMalformedObjectDeletion, true),
		opts:  options{codec: &failingCodec{Codec: apitesting.TestCodec(codecs, examplev1.SchemeGroupVersion)}},
		run: func(t *testing.T, e *env) {
			c := e.codec.(*failingCodec)
			storagetesting.RunTestDeleteWithConflictAndMissingExpectedTransformOrDecodeError(e.ctx, t, e.store, c.fail.Store)
		}},
	{name: "DeleteWithConflictAndExpectedTransformError",
		gates: gate(features.AllowUnsafeMalformedObjectDeletion, true),
		run: func(t *testing.T, e *env) {
			storagetesting.RunTestDeleteExpectedTransformOrDecodeError(e.ctx, t, e.store, e.transformer.fail.Store)
		}},
	{name: "DeleteWithConflictAndExpectedDecodeError",
		gates: gate(features.AllowUnsafeMalformedObjectDeletion, true),
		opts:  options{codec: &failingCodec{Codec: apitesting.TestCodec(codecs, examplev1.SchemeGroupVersion)}},
		run: func(t *testing.T, e *env) {
			c := e.codec.(*failingCodec)
			storagetesting.RunTestDeleteExpectedTransformOrDecodeError(e.ctx, t, e.store, c.fail.Store)
		}},
	{name: "DeleteWithSuggestionAndMissingExpectedTransformOrDecodeFailure",
		gates: gate(features.AllowUnsafeMalformedObjectDeletion, true),
		run: func(t *testing.T, e *env) {
			storagetesting.RunTestDeleteWithSuggestionAndMissingExpectedTransformOrDecodeError(e.ctx, t, e.store)
		}},
	{name: "PreconditionalDeleteWithSuggestion", run: func(t *testing.T, e *env) {
		storagetesting.RunTestPreconditionalDeleteWithSuggestion(e.ctx, t, e.store)
	}},
	{name: "PreconditionalDeleteWithSuggestionPass", run: func(t *testing.T, e *env) {
		storagetesting.RunTestPreconditionalDeleteWithOnlySuggestionPass(e.ctx, t, e.store)
	}},
	{name: "ListPaging", run: func(t *testing.T, e *env) { storagetesting.RunTestListPaging(e.ctx, t, e.store) }},
	{name: "GetListNonRecursive", run: func(t *testing.T, e *env) {
		storagetesting.RunTestGetListNonRecursive(e.ctx, t, e.increaseRV(), e.store)
	}},
	{name: "GetListRecursivePrefix", run: func(t *testing.T, e *env) { storagetesting.RunTestGetListRecursivePrefix(e.ctx, t, e.store) }},
	{name: "KeySchema", run: func(t *testing.T, e *env) { storagetesting.RunTestKeySchema(e.ctx, t, e.store) }},
	{name: "GuaranteedUpdate", run: func(t *testing.T, e *env) {
		storagetesting.RunTestGuaranteedUpdate(e.ctx, t, withPrefixTransformer{e.store, e.transformer}, e.checkStored())
	}},
	{name: "GuaranteedUpdateWithTTL", run: func(t *testing.T, e *env) { storagetesting.RunTestGuaranteedUpdateWithTTL(e.ctx, t, e.store) }},
	{name: "GuaranteedUpdateChecksStoredData", run: func(t *testing.T, e *env) {
		storagetesting.RunTestGuaranteedUpdateChecksStoredData(e.ctx, t, withPrefixTransformer{e.store, e.transformer})
	}},
	{name: "GuaranteedUpdateWithConflict", run: func(t *testing.T, e *env) {
		storagetesting.RunTestGuaranteedUpdateWithConflict(e.ctx, t, e.store)
	}},
	{name: "GuaranteedUpdateWithSuggestionAndConflict", run: func(t *testing.T, e *env) {
		storagetesting.RunTestGuaranteedUpdateWithSuggestionAndConflict(e.ctx, t, e.store)
	}},
	{name: "TransformationFailure", run: func(t *testing.T, e *env) {
		storagetesting.RunTestTransformationFailure(e.ctx, t, withPrefixTransformer{e.store, e.transformer})
	}},
	{name: "List/rangeStream=false", gates: gate(features.EtcdRangeStream, false), opts: options{ownServer: true}, run: func(t *testing.T, e *env) {
		storagetesting.RunTestList(e.ctx, t, e.store, e.compaction(), false, e.client.Kubernetes.(*storagetesting.KubernetesRecorder))
		e.checkStreamed(t, false)
	}},
	{name: "List/rangeStream=true", gates: gate(features.EtcdRangeStream, true), opts: options{ownServer: true}, run: func(t *testing.T, e *env) {
		storagetesting.RunTestList(e.ctx, t, e.store, e.compaction(), false, e.client.Kubernetes.(*storagetesting.KubernetesRecorder))
		e.checkStreamed(t, true)
	}},
	{name: "ConsistentList/rangeStream=false", gates: gate(features.EtcdRangeStream, false), run: func(t *testing.T, e *env) {
		storagetesting.RunTestConsistentList(e.ctx, t, e.store, e.increaseRV(), false, true, false)
	}},
	{name: "ConsistentList/rangeStream=true", gates: gate(features.EtcdRangeStream, true), run: func(t *testing.T, e *env) {
		storagetesting.RunTestConsistentList(e.ctx, t, e.store, e.increaseRV(), false, true, false)
	}},
	{name: "GetListStreamMultiChunk", gates: gate(features.EtcdRangeStream, true), run: func(t *testing.T, e *env) {
		runGetListStreamMultiChunk(t, e)
	}},
	{name: "CompactRevision", gates: gate(features.ListFromCacheSnapshot, true), opts: options{ownServer: true}, run: func(t *testing.T, e *env) {
		storagetesting.RunTestCompactRevision(e.ctx, t, e.store, e.increaseRV(), e.compaction())
	}},
	{name: "ListContinuation", run: func(t *testing.T, e *env) {
		storagetesting.RunTestListContinuation(e.ctx, t, e.store, e.callsValidation())
	}},
	{name: "ListPaginationRareObject", gates: gate(features.ListFromCacheSnapshot, false), run: func(t *testing.T, e *env) {
		storagetesting.RunTestListPaginationRareObject(e.ctx, t, e.store, e.callsValidation())
	}},
	{name: "ListContinuationWithFilter", run: func(t *testing.T, e *env) {
		storagetesting.RunTestListContinuationWithFilter(e.ctx, t, e.store, e.callsValidation())
	}},
	{name: "NamespaceScopedList", run: func(t *testing.T, e *env) { storagetesting.RunTestNamespaceScopedList(e.ctx, t, e.store) }},
	{name: "ListInconsistentContinuation", opts: options{ownServer: true}, run: func(t *testing.T, e *env) {
		storagetesting.RunTestListInconsistentContinuation(e.ctx, t, e.store, e.compaction())
	}},
	{name: "ListResourceVersionMatch", run: func(t *testing.T, e *env) {
		storagetesting.RunTestListResourceVersionMatch(e.ctx, t, withPrefixTransformer{e.store, e.transformer})
	}},
	{name: "Stats/SizeBasedListCostEstimate=true", run: func(t *testing.T, e *env) {
		if err := e.store.EnableResourceSizeEstimation(e.keys()); err != nil {
			t.Fatal(err)
		}
		storagetesting.RunTestStats(e.ctx, t, e.store, e.codec, e.transformer, true)
	}},
	{name: "Stats/SizeBasedListCostEstimate=false", run: func(t *testing.T, e *env) {
		storagetesting.RunTestStats(e.ctx, t, e.store, e.codec, e.transformer, false)
	}},
}

// watchTests mirrors watcher_test.go's TestWatch.
var watchTests = []conformance{
	{name: "Watch", run: func(t *testing.T, e *env) { storagetesting.RunTestWatch(e.ctx, t, e.store) }},
	{name: "ClusterScopedWatch", run: func(t *testing.T, e *env) { storagetesting.RunTestClusterScopedWatch(e.ctx, t, e.store) }},
	{name: "NamespaceScopedWatch", run: func(t *testing.T, e *env) { storagetesting.RunTestNamespaceScopedWatch(e.ctx, t, e.store) }},
	{name: "DeleteTriggerWatch", run: func(t *testing.T, e *env) { storagetesting.RunTestDeleteTriggerWatch(e.ctx, t, e.store) }},
	{name: "WatchFromZero", opts: options{ownServer: true}, run: func(t *testing.T, e *env) {
		storagetesting.RunTestWatchFromZero(e.ctx, t, e.store, e.compaction())
	}},
	{name: "WatchFromNonZero", run: func(t *testing.T, e *env) { storagetesting.RunTestWatchFromNonZero(e.ctx, t, e.store) }},
	{name: "DelayedWatchDelivery", run: func(t *testing.T, e *env) { storagetesting.RunTestDelayedWatchDelivery(e.ctx, t, e.store) }},
	{name: "WatchError", run: func(t *testing.T, e *env) {
		storagetesting.RunTestWatchError(e.ctx, t, withPrefixTransformer{e.store, e.transformer})
	}},
	{name: "WatchContextCancel", run: func(t *testing.T, e *env) { storagetesting.RunTestWatchContextCancel(e.ctx, t, e.store) }},
	{name: "WatcherTimeout", run: func(t *testing.T, e *env) { storagetesting.RunTestWatcherTimeout(e.ctx, t, e.store) }},
	{name: "WatchDeleteEventObjectHaveLatestRV", run: func(t *testing.T, e *env) {
		storagetesting.RunTestWatchDeleteEventObjectHaveLatestRV(e.ctx, t, e.store)
	}},
	{name: "WatchInitializationSignal", run: func(t *testing.T, e *env) {
		storagetesting.RunTestWatchInitializationSignal(e.ctx, t, e.store)
	}},
	{name: "ProgressNotify", opts: oneSecondProgress, run: func(t *testing.T, e *env) {
		storagetesting.RunOptionalTestProgressNotify(e.ctx, t, e.store, e.increaseRV())
	}},
	{name: "WatchDispatchBookmarkEvents", opts: oneSecondProgress, run: func(t *testing.T, e *env) {
		storagetesting.RunTestWatchDispatchBookmarkEvents(e.ctx, t, e.store, false)
	}},
	{name: "SendInitialEventsBackwardCompatibility", run: func(t *testing.T, e *env) {
		storagetesting.RunSendInitialEventsBackwardCompatibility(e.ctx, t, e.store)
	}},
	{name: "WatchErrorEventIsBlockingFurtherEvent", run: func(t *testing.T, e *env) {
		storagetesting.RunWatchErrorIsBlockingFurtherEvents(e.ctx, t, withPrefixTransformer{e.store, e.transformer})
	}},
}

// The watch-list tests, with the watch's initial sync paged and streamed
// (RangeStream=false/true), as watcher_test.go runs them.
func init() {
	for _, on := range []bool{false, true} {
		mode := fmt.Sprintf("RangeStream=%v/", on)
		watchTests = append(watchTests,
			conformance{name: mode + "WatchSemantics", gates: gate(features.EtcdRangeStream, on), run: func(t *testing.T, e *env) {
				storagetesting.RunWatchSemantics(e.ctx, t, e.store)
			}},
			conformance{name: mode + "WatchSemanticsWithConcurrentDecode",
				gates: map[featuregate.Feature]bool{features.EtcdRangeStream: on, features.ConcurrentWatchObjectDecode: true},
				run:   func(t *testing.T, e *env) { storagetesting.RunWatchSemantics(e.ctx, t, e.store) }},
			conformance{name: mode + "WatchSemanticInitialEventsExtended", gates: gate(features.EtcdRangeStream, on), run: func(t *testing.T, e *env) {
				storagetesting.RunWatchSemanticInitialEventsExtended(e.ctx, t, e.store)
			}},
			conformance{name: mode + "WatchListMatchSingle", gates: gate(features.EtcdRangeStream, on), run: func(t *testing.T, e *env) {
				storagetesting.RunWatchListMatchSingle(e.ctx, t, e.store)
			}},
		)
	}
}

func runAll(t *testing.T, tests []conformance) {
	for _, c := range tests {
		t.Run(c.name, func(t *testing.T) {
			for g, on := range c.gates {
				featuregatetesting.SetFeatureGateDuringTest(t, utilfeature.DefaultFeatureGate, g, on)
			}
			c.run(t, setup(t, c.opts))
		})
	}
}

// TestStore runs store_test.go's Run* functions.
func TestStore(t *testing.T) { runAll(t, storeTests) }

// TestWatch runs watcher_test.go's TestWatch Run* functions.
func TestWatch(t *testing.T) { runAll(t, watchTests) }
